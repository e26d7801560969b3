#!/usr/bin/python3
"""Drives python3-confluent-kafka's schema registry client against Runnel.

Run by test/clients (go test) with Debian's /usr/bin/python3:

  registry.py --registry HOST:PORT --bootstrap B --json-topic T1 --proto-topic T2

The test data comes as one JSON object on stdin:

  {"cases": [{"format": "AVRO"|"JSON"|"PROTOBUF", "subject": S, "schema": v1,
              "compatible": v2, "incompatible": text}, ...],
   "missing": a subject that does not exist, "deleted": a fresh subject
   name (it and <deleted>-hard are registered and deleted),
   "invalid": an Avro schema text that does not parse,
   "records": [dict, ...]}

For each case, SchemaRegistryClient registers v1 (twice: the same id),
reads it back with get_latest_version, get_schema, lookup_schema and
get_versions, sets the subject's compatibility to BACKWARD and reads it
back, tests v2 (compatible) and the incompatible text with
test_compatibility, registers v2 and then the incompatible text (which must
fail) and asks for a version that does not exist. Then the error paths: a
missing subject, a schema id that does not exist, an invalid schema, an
invalid compatibility level; and soft and permanent deletion of subjects.

Last, JSONSerializer and ProtobufSerializer (with their default
auto-registration under TopicNameStrategy) write "records" to T1 and an
Order message per record to T2; a consumer reads both topics back and
JSONDeserializer / ProtobufDeserializer decode them. (AvroSerializer needs
fastavro, which Debian does not package.) If the registry refuses the
ProtobufSerializer's schema, that is printed as one "serializer-error"
step and only the JSON records go through.

Every step prints one JSON object per line; errors are reported as
{"step", "status", "code", "message"} from SchemaRegistryError.
"""

import argparse
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(msg):
    sys.stderr.write("registry.py: " + msg + "\n")
    sys.exit(1)


def expect_error(step, fn):
    """Runs fn, which must raise SchemaRegistryError, and prints the error."""
    try:
        res = fn()
    except SchemaRegistryError as e:
        emit({"step": step, "status": e.http_status_code, "code": e.error_code,
              "message": e.error_message})
        return
    fail("%s: expected a SchemaRegistryError, got %r" % (step, res))


def registered(step, rs, **extra):
    obj = {"step": step, "id": rs.schema_id, "version": rs.version, "subject": rs.subject,
           "type": rs.schema.schema_type}
    obj.update(extra)
    emit(obj)


def client_steps(sr, data):
    for c in data["cases"]:
        fmt, subject = c["format"], c["subject"]
        v1 = Schema(c["schema"], fmt)
        sid = sr.register_schema(subject, v1)
        emit({"step": "register", "format": fmt, "subject": subject, "id": sid})
        # A fresh client: no cache answers for the registry.
        again = SchemaRegistryClient({"url": sr._rest_client.base_url})
        emit({"step": "register-again", "format": fmt, "id": again.register_schema(subject, v1)})
        registered("latest", again.get_latest_version(subject), format=fmt)
        s = again.get_schema(sid)
        emit({"step": "get-schema", "format": fmt, "id": sid, "type": s.schema_type,
              "schema": s.schema_str})
        registered("lookup", again.lookup_schema(subject, v1), format=fmt)
        emit({"step": "versions", "format": fmt, "versions": again.get_versions(subject)})
        res = again.set_compatibility(subject_name=subject, level="BACKWARD")
        emit({"step": "set-compat", "format": fmt, "result": res,
              "level": again.get_compatibility(subject)})
        emit({"step": "test-compat", "format": fmt, "compatible":
              again.test_compatibility(subject, Schema(c["compatible"], fmt)),
              "incompatible": again.test_compatibility(subject, Schema(c["incompatible"], fmt))})
        v2 = again.register_schema(subject, Schema(c["compatible"], fmt))
        registered("register-v2", again.lookup_schema(subject, Schema(c["compatible"], fmt)),
                   format=fmt, registered=v2)
        expect_error("incompatible-" + fmt,
                     lambda: again.register_schema(subject, Schema(c["incompatible"], fmt)))
        expect_error("no-version-" + fmt, lambda: again.get_version(subject, 99))

    expect_error("missing-subject", lambda: sr.get_latest_version(data["missing"]))
    expect_error("missing-lookup", lambda: sr.lookup_schema(data["missing"], Schema(data["cases"][0]["schema"], "AVRO")))
    expect_error("missing-id", lambda: sr.get_schema(987654321))
    expect_error("invalid-schema", lambda: sr.register_schema(data["deleted"], Schema(data["invalid"], "AVRO")))
    expect_error("invalid-level", lambda: sr.set_compatibility(data["cases"][0]["subject"], "SIDEWAYS"))

    # delete_subject(permanent=True) of this client version deletes softly
    # and then permanently; a second soft delete is an error (40404).
    deleted, hard = data["deleted"], data["deleted"] + "-hard"
    for subject in (deleted, hard):
        sr.register_schema(subject, Schema(data["cases"][0]["schema"], "AVRO"))
    emit({"step": "subjects", "subjects": sorted(sr.get_subjects())})
    emit({"step": "soft-delete", "versions": sr.delete_subject(deleted)})
    expect_error("after-soft-delete", lambda: sr.get_latest_version(deleted))
    expect_error("soft-delete-again", lambda: sr.delete_subject(deleted))
    emit({"step": "hard-delete", "versions": sr.delete_subject(hard, permanent=True)})
    expect_error("after-hard-delete", lambda: sr.get_latest_version(hard))
    emit({"step": "subjects-after", "subjects": sorted(sr.get_subjects())})


def order_class():
    """Builds a protobuf message class runnel.pytest.Order at run time (no protoc)."""
    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.name = "runnel/pytest/order.proto"
    fdp.package = "runnel.pytest"
    fdp.syntax = "proto3"
    msg = fdp.message_type.add()
    msg.name = "Order"
    F = descriptor_pb2.FieldDescriptorProto
    for number, (name, typ, label) in enumerate([
            ("id", F.TYPE_STRING, F.LABEL_OPTIONAL),
            ("qty", F.TYPE_INT32, F.LABEL_OPTIONAL),
            ("price", F.TYPE_DOUBLE, F.LABEL_OPTIONAL),
            ("tags", F.TYPE_STRING, F.LABEL_REPEATED)], start=1):
        f = msg.field.add()
        f.name, f.number, f.type, f.label = name, number, typ, label
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("runnel.pytest.Order")
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def serializer_steps(sr, args, data):
    json_schema = next(c["schema"] for c in data["cases"] if c["format"] == "JSON")
    Order = order_class()
    jser = JSONSerializer(json_schema, sr)
    pser = ProtobufSerializer(Order, sr)
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 5})
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    records = data["records"]
    # ProtobufSerializer registers the message's file as a base64-encoded
    # FileDescriptorProto; a registry that rejects that fails the whole
    # Protobuf half, reported as one step.
    proto_values = []
    try:
        for r in records:
            o = Order(id=r["name"], qty=r["n"], price=r["n"] * 1.5, tags=[r["name"], "t"])
            proto_values.append(pser(o, SerializationContext(args.proto_topic, MessageField.VALUE)))
    except SchemaRegistryError as e:
        emit({"step": "serializer-error", "format": "PROTOBUF", "status": e.http_status_code,
              "code": e.error_code, "message": e.error_message})
        proto_values = []
    for i, r in enumerate(records):
        key = ("py-%d" % i).encode()
        p.produce(args.json_topic, key=key, on_delivery=on_delivery,
                  value=jser(r, SerializationContext(args.json_topic, MessageField.VALUE)))
    for i, v in enumerate(proto_values):
        p.produce(args.proto_topic, key=("py-%d" % i).encode(), on_delivery=on_delivery, value=v)
    if p.flush(30):
        fail("records not delivered")
    if errors:
        fail("delivery failed: " + "; ".join(errors))

    jdes = JSONDeserializer(json_schema)
    pdes = ProtobufDeserializer(Order)
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "unused-registry-reader",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(args.json_topic, 0, OFFSET_BEGINNING),
              TopicPartition(args.proto_topic, 0, OFFSET_BEGINNING)])
    want = len(records) + len(proto_values)
    got = 0
    deadline = time.time() + 30
    try:
        while got < want:
            if time.time() > deadline:
                fail("consumed %d of %d records" % (got, want))
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                fail("consume: %s" % msg.error())
            raw = msg.value()
            ctx = SerializationContext(msg.topic(), MessageField.VALUE)
            if msg.topic() == args.json_topic:
                fmt, value = "JSON", jdes(raw, ctx)
            else:
                o = pdes(raw, ctx)
                fmt, value = "PROTOBUF", {"id": o.id, "qty": o.qty, "price": o.price,
                                          "tags": list(o.tags)}
            emit({"step": "record", "format": fmt, "key": msg.key().decode(),
                  "id": int.from_bytes(raw[1:5], "big"), "value": value})
            got += 1
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--json-topic", required=True)
    ap.add_argument("--proto-topic", required=True)
    args = ap.parse_args()
    data = json.load(sys.stdin)
    sr = SchemaRegistryClient({"url": "http://" + args.registry})
    client_steps(sr, data)
    serializer_steps(sr, args, data)


if __name__ == "__main__":
    main()
