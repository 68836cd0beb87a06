"""The site's real ClientApp, whose training replies wait `train-sleep` seconds (at the site
named `train-sleep-site`, or at every site) before they leave."""

import time

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable

from clients.torch_client import identify_reply, site_config, train_reply


def sleep_after_training(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    reply = call_next(msg, context)
    seconds = float(context.run_config.get("train-sleep", 0.0))
    only_at = str(context.run_config.get("train-sleep-site", ""))
    if seconds > 0 and (not only_at or site_config(context).name == only_at):
        time.sleep(seconds)
    return reply


app = ClientApp()
app.query()(identify_reply)
app.train(mods=[sleep_after_training])(train_reply)
