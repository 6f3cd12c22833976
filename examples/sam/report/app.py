def handler(event, context):
    return {"report": "nightly", "time": event.get("time")}
