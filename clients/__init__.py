"""Site-side code: a hospital's client API, its Flower SuperNode and the ClientApp it runs."""
