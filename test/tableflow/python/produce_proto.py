#!/usr/bin/python3
"""Produces Protobuf records with python3-confluent-kafka's ProtobufSerializer.

Run by test/tableflow (go test) with Debian's /usr/bin/python3:

  produce_proto.py --bootstrap B --registry HOST:PORT --topic T

stdin is one JSON object {"records": [{"key": K, "timestamp": ms,
"headers": {name: value} | null, "value": {...}}, ...]} whose values are
runnel.tf.Order messages (built at run time from a FileDescriptorProto, no
protoc):

  message Order {
    string id = 1; int32 qty = 2; int64 amount = 3; double price = 4;
    bool paid = 5; Customer customer = 6; repeated string tags = 7;
    Status status = 8;
    message Customer { string name = 1; int32 score = 2; }
  }
  enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }

The serializer registers the schema under <topic>-value (its default
TopicNameStrategy) and writes Confluent's wire format (magic byte, schema
id, message indexes, message). Prints {"id": schema id, "produced": n}.
"""

import argparse
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def fail(msg):
    sys.stderr.write("produce_proto.py: " + msg + "\n")
    sys.exit(1)


def order_class():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.name = "runnel/tf/order.proto"
    fdp.package = "runnel.tf"
    fdp.syntax = "proto3"
    status = fdp.enum_type.add()
    status.name = "Status"
    for number, name in enumerate(["NEW", "PAID", "SHIPPED"]):
        v = status.value.add()
        v.name, v.number = name, number
    msg = fdp.message_type.add()
    msg.name = "Order"
    cust = msg.nested_type.add()
    cust.name = "Customer"
    for number, (name, typ) in enumerate([("name", F.TYPE_STRING), ("score", F.TYPE_INT32)], start=1):
        f = cust.field.add()
        f.name, f.number, f.type, f.label = name, number, typ, F.LABEL_OPTIONAL
    for number, (name, typ, label, type_name) in enumerate([
            ("id", F.TYPE_STRING, F.LABEL_OPTIONAL, None),
            ("qty", F.TYPE_INT32, F.LABEL_OPTIONAL, None),
            ("amount", F.TYPE_INT64, F.LABEL_OPTIONAL, None),
            ("price", F.TYPE_DOUBLE, F.LABEL_OPTIONAL, None),
            ("paid", F.TYPE_BOOL, F.LABEL_OPTIONAL, None),
            ("customer", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".runnel.tf.Order.Customer"),
            ("tags", F.TYPE_STRING, F.LABEL_REPEATED, None),
            ("status", F.TYPE_ENUM, F.LABEL_OPTIONAL, ".runnel.tf.Status")], start=1):
        f = msg.field.add()
        f.name, f.number, f.type, f.label = name, number, typ, label
        if type_name:
            f.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("runnel.tf.Order"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--topic", required=True)
    args = ap.parse_args()
    records = json.load(sys.stdin)["records"]

    Order = order_class()
    ser = ProtobufSerializer(Order, SchemaRegistryClient({"url": "http://" + args.registry}))
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5})
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    schema_id = None
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    for r in records:
        v = r["value"]
        o = Order(id=v["id"], qty=v["qty"], amount=v["amount"], price=v["price"], paid=v["paid"],
                  tags=v["tags"], status=v["status"])
        o.customer.name = v["customer"]["name"]
        o.customer.score = v["customer"]["score"]
        value = ser(o, ctx)
        schema_id = int.from_bytes(value[1:5], "big")
        headers = list((r.get("headers") or {}).items()) or None
        p.produce(args.topic, key=r["key"].encode(), value=value, timestamp=r["timestamp"],
                  headers=headers, on_delivery=on_delivery)
        p.poll(0)
    if p.flush(30):
        fail("records not delivered")
    if errors:
        fail("delivery failed: " + "; ".join(errors))
    sys.stdout.write(json.dumps({"id": schema_id, "produced": len(records)}) + "\n")


if __name__ == "__main__":
    main()
