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
  txn-produce  --bootstrap B --topic T --txn-id X --prefix P
               --partitions N --commit C --abort A --commit-after D
           transactional producer: one transaction of C records that it
           commits, one of A records that it flushes to the broker and
           aborts, one of D records that it commits. Record i of a
           transaction whose phase is F ("c1", "ab" or "c2") has key
           "P-F-k<i>", value "P-F-v<i>", header h-index=<i> and goes to
           partition i % N; prints {"key","partition","offset","phase"}
           per delivery.
  read     --bootstrap B --topic T --partitions N --isolation I
           assigns every partition from the start with isolation.level I
           and reads until librdkafka reports the end of each (for
           read_committed, the last stable offset); prints one record
           object per record, as consume does.
  txn-pipeline --bootstrap B --input IN --output OUT --group G
               --txn-id X --count N --timeout S
           consume-transform-produce: a read_committed group consumer on
           IN and a transactional producer that writes each record to OUT
           (same key, value "out-" + value, same headers) and commits the
           consumer's positions with send_offsets_to_transaction, one
           transaction per poll. The first transaction is aborted and the
           consumer rewound to its committed offsets; it stops after N
           input records were committed. Prints {"step","records"} per
           transaction.
  txn-fence    --bootstrap B --topic T --txn-id X
           producer A begins a transaction and writes "a-0"; producer B
           with the same transactional id runs init_transactions; A then
           writes "a-1" and tries to commit; B writes "b-0" and commits.
           Prints one {"step", ...} object per step, with the error name
           and whether librdkafka treats it as fatal.
"""

import argparse
import json
import os
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

try:
    from confluent_kafka.admin import ResourceType

    TOPIC_RESOURCE = ResourceType.TOPIC
except ImportError:  # older bindings name the type by string
    TOPIC_RESOURCE = "topic"


def conf(d):
    """Adds the librdkafka properties of RUNNEL_CLIENT_CONFIG (a JSON
    object, e.g. security.protocol and sasl.* for a secured listener)."""
    extra = os.environ.get("RUNNEL_CLIENT_CONFIG")
    if extra:
        d.update(json.loads(extra))
    return d


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
    p = Producer(conf({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": args.compression,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
    }))
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
    c = Consumer(conf({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "enable.partition.eof": False,
    }))
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
    a = AdminClient(conf({"bootstrap.servers": args.bootstrap}))
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


def txn_producer(bootstrap, txn_id):
    return Producer(conf({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": 30000,
        "message.timeout.ms": 20000,
        "linger.ms": 5,
    }))


def record_of(msg):
    return {
        "key": decode(msg.key()),
        "value": decode(msg.value()),
        "headers": [[k, decode(v)] for k, v in (msg.headers() or [])],
        "partition": msg.partition(),
        "offset": msg.offset(),
    }


def txn_produce(args):
    p = txn_producer(args.bootstrap, args.txn_id)
    p.init_transactions(30)
    errors = []

    def send(phase, count, commit):
        def on_delivery(err, msg):
            if err is not None:
                errors.append("%s: %s" % (decode(msg.key()), err))
                return
            emit({"key": decode(msg.key()), "partition": msg.partition(),
                  "offset": msg.offset(), "phase": phase})

        p.begin_transaction()
        for i in range(count):
            p.produce(
                args.topic,
                key=("%s-%s-k%d" % (args.prefix, phase, i)).encode(),
                value=("%s-%s-v%d" % (args.prefix, phase, i)).encode(),
                headers=[("h-index", str(i).encode())],
                partition=i % args.partitions,
                on_delivery=on_delivery,
            )
            p.poll(0)
        # Flush first, so even the aborted records are in the log and a
        # read_committed consumer has to filter them out.
        left = p.flush(30)
        if left:
            fail("%s: %d records not delivered" % (phase, left))
        if errors:
            fail("delivery failed: " + "; ".join(errors))
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)

    send("c1", args.commit, True)
    send("ab", args.abort, False)
    send("c2", args.commit_after, True)


def read(args):
    c = Consumer(conf({
        "bootstrap.servers": args.bootstrap,
        "group.id": "unused-reader",  # assign() only; nothing is committed
        "enable.auto.commit": False,
        "isolation.level": args.isolation,
        "enable.partition.eof": True,
        # librdkafka reports a partition's end only on a fetch that finds
        # nothing new: keep that wait short.
        "fetch.wait.max.ms": 100,
    }))
    c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    at_end = set()
    deadline = time.time() + args.timeout
    try:
        while len(at_end) < args.partitions:
            if time.time() > deadline:
                fail("read: only partitions %s reached their end" % sorted(at_end))
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                fail("read: %s" % msg.error())
            emit(record_of(msg))
    finally:
        c.close()


def txn_pipeline(args):
    c = Consumer(conf({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 10000,
        "enable.partition.eof": False,
    }))
    p = txn_producer(args.bootstrap, args.txn_id)
    p.init_transactions(30)
    c.subscribe([args.input])
    handled = 0
    aborted = False
    deadline = time.time() + args.timeout
    try:
        while handled < args.count:
            if time.time() > deadline:
                fail("pipeline: committed %d of %d records before the timeout" % (handled, args.count))
            msgs = c.consume(num_messages=50, timeout=0.5)
            if not msgs:
                continue
            for m in msgs:
                if m.error():
                    fail("pipeline consume: %s" % m.error())
            p.begin_transaction()
            for m in msgs:
                p.produce(args.output, key=m.key(), value=b"out-" + m.value(),
                          headers=m.headers(), partition=m.partition())
            positions = [tp for tp in c.position(c.assignment()) if tp.offset >= 0]
            p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 30)
            if not aborted:
                left = p.flush(30)
                if left:
                    fail("pipeline: %d records not delivered" % left)
                p.abort_transaction(30)
                aborted = True
                # Rewind to what the group has committed: the aborted
                # transaction's offsets must not have been.
                for tp in c.committed(c.assignment(), timeout=30):
                    off = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                    c.seek(TopicPartition(tp.topic, tp.partition, off))
                emit({"step": "abort", "records": len(msgs)})
                continue
            p.commit_transaction(30)
            handled += len(msgs)
            emit({"step": "commit", "records": len(msgs)})
    finally:
        c.close()


def kafka_error(e):
    err = e.args[0]
    return {"error": err.name(), "fatal": err.fatal()}


def txn_fence(args):
    a = txn_producer(args.bootstrap, args.txn_id)
    a.init_transactions(30)
    a.begin_transaction()
    a.produce(args.topic, key=b"a-0", value=b"a-0", partition=0)
    if a.flush(30):
        fail("fence: a-0 not delivered")
    emit({"step": "a-produce"})

    b = txn_producer(args.bootstrap, args.txn_id)
    b.init_transactions(30)
    emit({"step": "b-init"})

    delivery = []
    a.produce(args.topic, key=b"a-1", value=b"a-1", partition=0,
              on_delivery=lambda err, msg: delivery.append(None if err is None else err.name()))
    try:
        a.flush(30)
        flushed = {"error": None, "fatal": False}
    except KafkaException as e:  # librdkafka raises its fatal error here
        flushed = kafka_error(e)
    emit(dict({"step": "a-produce-after-fence", "delivery": delivery}, **flushed))
    try:
        a.commit_transaction(30)
        emit({"step": "a-commit", "error": None, "fatal": False})
    except KafkaException as e:
        emit(dict({"step": "a-commit"}, **kafka_error(e)))

    b.begin_transaction()
    b.produce(args.topic, key=b"b-0", value=b"b-0", partition=0)
    b.commit_transaction(30)
    emit({"step": "b-commit"})


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
    tp = sub.add_parser("txn-produce")
    tp.add_argument("--bootstrap", required=True)
    tp.add_argument("--topic", required=True)
    tp.add_argument("--txn-id", required=True)
    tp.add_argument("--prefix", required=True)
    tp.add_argument("--partitions", type=int, required=True)
    tp.add_argument("--commit", type=int, required=True)
    tp.add_argument("--abort", type=int, required=True)
    tp.add_argument("--commit-after", type=int, required=True)
    r = sub.add_parser("read")
    r.add_argument("--bootstrap", required=True)
    r.add_argument("--topic", required=True)
    r.add_argument("--partitions", type=int, required=True)
    r.add_argument("--isolation", required=True, choices=["read_committed", "read_uncommitted"])
    r.add_argument("--timeout", type=float, default=30)
    pl = sub.add_parser("txn-pipeline")
    pl.add_argument("--bootstrap", required=True)
    pl.add_argument("--input", required=True)
    pl.add_argument("--output", required=True)
    pl.add_argument("--group", required=True)
    pl.add_argument("--txn-id", required=True)
    pl.add_argument("--count", type=int, required=True)
    pl.add_argument("--timeout", type=float, default=30)
    f = sub.add_parser("txn-fence")
    f.add_argument("--bootstrap", required=True)
    f.add_argument("--topic", required=True)
    f.add_argument("--txn-id", required=True)
    args = ap.parse_args()
    {
        "produce": produce, "consume": consume, "admin": admin,
        "txn-produce": txn_produce, "read": read,
        "txn-pipeline": txn_pipeline, "txn-fence": txn_fence,
    }[args.cmd](args)


if __name__ == "__main__":
    main()
