"""klambda's SQS event beside the SAM CLI's sample (`sam local generate-event sqs
receive-message`): the same keys, types and constants, the same MD5 of the same body."""

from __future__ import annotations

from klambda.triggers import sqs

from tests.samcli import generate_event, shape


def test_sqs_event_matches_sam() -> None:
    sam = generate_event("sqs", "receive-message")
    theirs = sam["Records"][0]
    arn = theirs["eventSourceARN"]
    ours = sqs.event(
        [
            sqs.Message(
                message_id=theirs["messageId"],
                receipt_handle="1:token",
                body=theirs["body"],
                attributes={},
                sent_at=int(theirs["attributes"]["SentTimestamp"]) / 1000,
                first_received_at=int(theirs["attributes"]["ApproximateFirstReceiveTimestamp"])
                / 1000,
                receive_count=1,
            )
        ],
        arn=arn,
        region=theirs["awsRegion"],
    )
    assert shape(ours) == shape(sam)
    mine = ours["Records"][0]
    for constant in ("eventSource", "eventSourceARN", "awsRegion", "md5OfBody", "body"):
        assert mine[constant] == theirs[constant], constant
    assert mine["attributes"] == theirs["attributes"]
    assert mine["messageAttributes"] == theirs["messageAttributes"] == {}
