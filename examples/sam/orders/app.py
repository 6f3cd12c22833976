import os

VERSION = "1"


def handler(event, context):
    if event.get("fail") or os.environ.get("BROKEN") == "yes":
        raise RuntimeError("orders cannot be taken")
    return {"order": event.get("id"), "stage": os.environ["STAGE"], "version": VERSION}


def pre_traffic(event, context):
    return {"status": "Succeeded"}
