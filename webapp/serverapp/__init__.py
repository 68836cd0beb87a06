"""What the ServerApp runs for one job, concept by concept.

- `job`: the entry (`start_flower_server`): loads the job, runs it, ends it with a reason.
- `nodes`: which Flower node serves which of the job's clients (identify queries, rejoins).
- `liveness`: which clients are alive (site health probes, Flower's heartbeats), alerts.
- `rounds`: the round loop: who trains, each reply recorded as it arrives, deadlines.
- `aggregation`: a Flower strategy object, composed: what a round sends, how replies combine.
- `model`: the global model's first weights and its file (the only torch in here).
- `plan`: what the loop knows about its job, read from the database once.
- `runtime`: what the loop needs from outside (a Grid-shaped interface, a clock), so tests
  drive it in-process.
"""
