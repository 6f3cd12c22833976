"""Counts words: code from a folder (`code.path`), with init work outside the handler."""

import collections
import re

WORD = re.compile(r"[a-z']+")  # compiled once per environment, at init


def handler(event, context):
    words = WORD.findall(str(event.get("text", "")).lower())
    top = collections.Counter(words).most_common(int(event.get("top", 3)))
    print(f"counted {len(words)} words")
    return {"words": len(words), "top": top, "requestId": context.aws_request_id}
