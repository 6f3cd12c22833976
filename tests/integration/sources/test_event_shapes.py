"""klambda's SQS and Kinesis events beside the SAM CLI's samples (`sam local generate-event
sqs receive-message`, `kinesis get-records`): the same keys, types and constants."""

from __future__ import annotations

import base64

from klambda.triggers import dynamodb, kinesis, s3, sqs

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


def test_kinesis_event_matches_sam() -> None:
    sam = generate_event("kinesis", "get-records")
    theirs = sam["Records"][0]
    k = theirs["kinesis"]
    seq = int(k["sequenceNumber"])
    rec = kinesis.StreamRecord(
        0, seq, k["partitionKey"], base64.b64decode(k["data"]), k["approximateArrivalTimestamp"]
    )
    arn = kinesis.stream_arn("us-east-1", "123456789012", "clicks")
    ours = {"Records": [kinesis.record(rec, arn=arn, region="us-east-1", account="123456789012")]}
    assert shape(ours) == shape(sam)
    mine = ours["Records"][0]
    assert mine["kinesis"] == k
    assert mine["eventID"] == theirs["eventID"]
    for constant in ("eventSource", "eventVersion", "eventName", "awsRegion"):
        assert mine[constant] == theirs[constant], constant


def test_dynamodb_event_matches_sam() -> None:
    sam = generate_event("dynamodb", "update")
    by_name = {r["eventName"]: r for r in sam["Records"]}
    arn = dynamodb.table_arn("us-east-1", "123456789012", "public.orders", "klambda_orders")
    first = {"Id": "101", "Message": "New item!"}
    changed = {"Id": "101", "Message": "This item has changed"}
    images = {"INSERT": (first, None), "MODIFY": (changed, first), "REMOVE": (None, changed)}
    for kind, (new, old) in images.items():
        ours = dynamodb.record(
            kind=kind, keys=["Id"], new=new, old=old, types={"Id": 23, "Message": 25},
            view_type="NEW_AND_OLD_IMAGES", sequence=4421584500000000017450439091,
            created_at=1428537600, arn=arn, region="us-east-1",
        )  # fmt: skip
        theirs = by_name[kind]
        assert shape(ours) == shape(theirs), kind
        assert ours["dynamodb"]["Keys"] == theirs["dynamodb"]["Keys"]
        for part in ("NewImage", "OldImage"):
            assert ours["dynamodb"].get(part) == theirs["dynamodb"].get(part), (kind, part)
        for constant in ("eventVersion", "eventSource", "awsRegion"):
            assert ours[constant] == theirs[constant], constant
        seq = theirs["dynamodb"]["SequenceNumber"]
        assert len(ours["dynamodb"]["SequenceNumber"]) == len(seq)
        assert ours["dynamodb"]["SequenceNumber"].isdigit()
        assert ours["dynamodb"]["ApproximateCreationDateTime"] == 1428537600


def test_s3_events_match_sam() -> None:
    for sample, name in (("put", "ObjectCreated:Put"), ("delete", "ObjectRemoved:Delete")):
        theirs = generate_event("s3", sample)["Records"][0]
        obj = theirs["s3"]["object"]
        e = s3.ObjectEvent(
            name=name, bucket=theirs["s3"]["bucket"]["name"], key=obj["key"],
            size=obj.get("size"), etag=obj.get("eTag"), sequencer=obj["sequencer"],
            time=theirs["eventTime"], source_ip="127.0.0.1", request_id="EXAMPLE123456789",
            principal="EXAMPLE",
        )  # fmt: skip
        ours = s3.record(e, region="us-east-1", configuration="testConfigRule")
        assert shape(ours) == shape(theirs), sample
        for part in ("eventVersion", "eventSource", "awsRegion", "eventTime", "eventName"):
            assert ours[part] == theirs[part], part
        assert ours["s3"] == theirs["s3"], sample
        assert ours["userIdentity"] == theirs["userIdentity"]
        assert ours["requestParameters"] == theirs["requestParameters"]
