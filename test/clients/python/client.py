#!/usr/bin/python3
"""Drives python3-confluent-kafka (librdkafka) against a Runnel broker.

Run by test/clients (go test) with Debian's /usr/bin/python3. Every
subcommand prints one JSON object per line on stdout; the Go test checks
record contents, offsets and counts. Errors go to stderr with a non-zero
exit status.

Subcommands:
  produce  --bootstrap B --topic T --compression C --count N --prefix P
           idempotent producer (acks=all); record i has key "P-k<i>",
           value "P-v<i>-" + 64 "x" and headers h-index=<i>, h-codec=<C>;
           prints {"key","partition","offset"} per delivery.
  consume  --bootstrap B --topic T --group G --max N --timeout S
           group consumer without auto commit; reads until N records or
           the timeout, commits exactly what it read, closes; prints
           {"key","value","headers","partition","offset"} per record.
  admin    --bootstrap B --topic T --partitions P
           creates T, describes it and its configs, deletes it; prints
           one {"step", ...} object per step.
"""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

try:
    from confluent_kafka.admin import ResourceType

    TOPIC_RESOURCE = ResourceType.TOPIC
except ImportError:  # older bindings name the type by string
    TOPIC_RESOURCE = "topic"


# PAD makes values compressible, so librdkafka never falls back to sending
# a batch uncompressed.
PAD = "x" * 64


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(msg):
    sys.stderr.write("client.py: " + msg + "\n")
    sys.exit(1)


def decode(b):
    return None if b is None else b.decode("utf-8")


def produce(args):
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": args.compression,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
    })
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append("%s: %s" % (decode(msg.key()), err))
            return
        emit({"key": decode(msg.key()), "partition": msg.partition(), "offset": msg.offset()})

    for i in range(args.count):
        p.produce(
            args.topic,
            key=("%s-k%d" % (args.prefix, i)).encode(),
            value=("%s-v%d-%s" % (args.prefix, i, PAD)).encode(),
            headers=[("h-index", str(i).encode()), ("h-codec", args.compression.encode())],
            on_delivery=on_delivery,
        )
        p.poll(0)
    left = p.flush(30)
    if left:
        fail("%d records not delivered" % left)
    if errors:
        fail("delivery failed: " + "; ".join(errors))


def consume(args):
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "enable.partition.eof": False,
    })
    c.subscribe([args.topic])
    got = 0
    next_offsets = {}
    deadline = time.time() + args.timeout
    try:
        while got < args.max and time.time() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                fail("consume: %s" % msg.error())
            headers = [[k, decode(v)] for k, v in (msg.headers() or [])]
            emit({
                "key": decode(msg.key()),
                "value": decode(msg.value()),
                "headers": headers,
                "partition": msg.partition(),
                "offset": msg.offset(),
            })
            next_offsets[msg.partition()] = msg.offset() + 1
            got += 1
        if next_offsets:
            tps = [TopicPartition(args.topic, p, o) for p, o in sorted(next_offsets.items())]
            for tp in c.commit(offsets=tps, asynchronous=False):
                if tp.error is not None:
                    fail("commit %s[%d]: %s" % (tp.topic, tp.partition, tp.error))
    finally:
        c.close()


def wait_futures(futures, what):
    for name, fut in futures.items():
        try:
            fut.result(30)
        except KafkaException as e:
            fail("%s %s: %s" % (what, name, e))


def admin(args):
    a = AdminClient({"bootstrap.servers": args.bootstrap})
    wait_futures(a.create_topics([NewTopic(args.topic, num_partitions=args.partitions,
                                           replication_factor=1,
                                           config={"retention.ms": "3600000"})]), "create")
    emit({"step": "create", "topic": args.topic})

    # Creating it again must fail with TOPIC_ALREADY_EXISTS.
    dup = a.create_topics([NewTopic(args.topic, num_partitions=1, replication_factor=1)])
    try:
        dup[args.topic].result(30)
        emit({"step": "create-again", "error": None})
    except KafkaException as e:
        emit({"step": "create-again", "error": e.args[0].name()})

    md = a.list_topics(topic=args.topic, timeout=30)
    tm = md.topics.get(args.topic)
    if tm is None:
        fail("describe: topic missing from metadata")
    emit({
        "step": "describe",
        "topic": args.topic,
        "error": None if tm.error is None else tm.error.name(),
        "partitions": sorted(tm.partitions.keys()),
        "leaders": sorted({p.leader for p in tm.partitions.values()}),
        "brokers": sorted(b.id for b in md.brokers.values()),
    })

    res = ConfigResource(TOPIC_RESOURCE, args.topic)
    configs = {}
    for _, fut in a.describe_configs([res]).items():
        try:
            for name, entry in fut.result(30).items():
                configs[name] = entry.value
        except KafkaException as e:
            fail("describe configs: %s" % e)
    emit({"step": "configs", "configs": configs})

    wait_futures(a.delete_topics([args.topic]), "delete")
    emit({"step": "delete", "topic": args.topic})

    # Metadata may lag the delete by a moment on other brokers; poll briefly.
    deadline = time.time() + 10
    while True:
        md = a.list_topics(timeout=30)
        tm = md.topics.get(args.topic)
        gone = tm is None or (tm.error is not None and tm.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART)
        if gone or time.time() > deadline:
            break
        time.sleep(0.1)
    emit({"step": "after-delete", "present": not gone})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--compression", required=True,
                   choices=["none", "gzip", "snappy", "lz4", "zstd"])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--prefix", required=True)
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--group", required=True)
    c.add_argument("--max", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30)
    d = sub.add_parser("admin")
    d.add_argument("--bootstrap", required=True)
    d.add_argument("--topic", required=True)
    d.add_argument("--partitions", type=int, required=True)
    args = ap.parse_args()
    {"produce": produce, "consume": consume, "admin": admin}[args.cmd](args)


if __name__ == "__main__":
    main()
