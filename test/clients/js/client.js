#!/usr/bin/env node
// Drives kafkajs against a Runnel broker. Run by test/clients (go test).
// Every subcommand prints one JSON object per line on stdout; the Go test
// checks record contents, offsets and counts. kafkajs logs go to stderr.
//
//   produce  <bootstrap> <topic> <codec> <count> <prefix> <partitions>
//            idempotent producer, acks=all; record i goes to partition
//            i % partitions with key "<prefix>-k<i>", value "<prefix>-v<i>-" + 64 "x",
//            headers h-index=<i>, h-codec=<codec>; prints {key,partition,offset}.
//   consume  <bootstrap> <topic> <group> <max> <timeoutMs>
//            group consumer without auto commit; reads until max records
//            or the timeout, commits exactly what it read, disconnects;
//            prints {key,value,headers,partition,offset} per record.
//   admin    <bootstrap> <topic> <partitions>
//            create, list, describe (metadata), delete; one {step,...} per step.
//   codecs   prints the codecs this kafkajs installation can use.
//   (Every client takes its TLS and SASL options from the environment:
//   see security().)
//   txn-produce  <bootstrap> <topic> <txnId> <prefix> <partitions> <c1> <ab> <c2>
//            transactional producer: a transaction of c1 records that it
//            commits, one of ab records that it aborts, one of c2 records
//            that it commits. Record i of phase F ("c1", "ab", "c2") has
//            key "<prefix>-F-k<i>", value "<prefix>-F-v<i>", header
//            h-index=<i> and goes to partition i % partitions; prints
//            {key,partition,offset,phase}.
//   read     <bootstrap> <topic> <group> <max> <timeoutMs> <isolation>
//            like consume, with isolation read_committed (kafkajs'
//            default, readUncommitted: false) or read_uncommitted.
//   txn-pipeline <bootstrap> <input> <output> <group> <txnId> <count> <timeoutMs>
//            consume-transform-produce: per fetched batch, a transaction
//            that writes each input record to output (same key and
//            partition, value "out-" + value, same headers) and commits
//            the group's offsets with txn.sendOffsets. The first batch's
//            transaction is aborted and the consumer and producer are
//            closed and started afresh, as after a crash; it stops after
//            count input records were committed. Prints {step,records}
//            per transaction.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')

const codecNames = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

// Registers the codec plugins: kafkajs ships only gzip. snappy and lz4 come
// from kafkajs-snappy and kafkajs-lz4. The published zstd plugin
// (@kafkajs/zstd) needs the native cppzst module, which no longer builds on
// current Node; zstd is provided by a small codec over @bokuweb/zstd-wasm.
async function registerCodecs () {
  const available = ['none', 'gzip']
  try {
    CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
    available.push('snappy')
  } catch (e) {
    process.stderr.write(`snappy codec unavailable: ${e.message}\n`)
  }
  try {
    const LZ4Codec = require('kafkajs-lz4')
    CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
    available.push('lz4')
  } catch (e) {
    process.stderr.write(`lz4 codec unavailable: ${e.message}\n`)
  }
  try {
    const zstd = require('@bokuweb/zstd-wasm')
    await zstd.init()
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      async compress (encoder) {
        return Buffer.from(zstd.compress(encoder.buffer, 3))
      },
      async decompress (buffer) {
        return Buffer.from(zstd.decompress(buffer))
      },
    })
    available.push('zstd')
  } catch (e) {
    process.stderr.write(`zstd codec unavailable: ${e.message}\n`)
  }
  return available
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

// security returns the ssl and sasl options of RUNNEL_CLIENT_SECURITY, a
// JSON object {"ssl": {"caFile": F}, "sasl": {mechanism, username,
// password}} for a secured listener; {} when unset.
function security () {
  const raw = process.env.RUNNEL_CLIENT_SECURITY
  if (!raw) return {}
  const cfg = JSON.parse(raw)
  const out = {}
  if (cfg.ssl) {
    out.ssl = cfg.ssl.caFile ? { ca: [require('fs').readFileSync(cfg.ssl.caFile, 'utf8')] } : true
  }
  if (cfg.sasl) out.sasl = cfg.sasl
  return out
}

function client (bootstrap) {
  return new Kafka({
    ...security(),
    clientId: 'runnel-kafkajs-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, label, log }) => {
      process.stderr.write(`[${label}] ${namespace}: ${log.message} ${JSON.stringify(log)}\n`)
    },
    retry: { retries: 5, initialRetryTime: 100 },
  })
}

function headersOf (h) {
  const out = []
  for (const k of Object.keys(h || {}).sort()) {
    const v = h[k]
    out.push([k, Buffer.isBuffer(v) ? v.toString('utf8') : String(v)])
  }
  return out
}

async function produce ([bootstrap, topic, codec, countS, prefix, partsS]) {
  if (!(codec in codecNames)) throw new Error(`unknown codec ${codec}`)
  const count = parseInt(countS, 10)
  const parts = parseInt(partsS, 10)
  if (!(count > 0) || !(parts > 0)) throw new Error('count and partitions must be positive')
  const producer = client(bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const messages = []
    for (let i = 0; i < count; i++) {
      messages.push({
        key: `${prefix}-k${i}`,
        value: `${prefix}-v${i}-${'x'.repeat(64)}`,
        partition: i % parts,
        headers: { 'h-index': String(i), 'h-codec': codec },
      })
    }
    const res = await producer.send({ topic, acks: -1, compression: codecNames[codec], messages })
    const base = {}
    for (const r of res) {
      if (r.errorCode !== 0) throw new Error(`partition ${r.partition}: error ${r.errorCode}`)
      base[r.partition] = BigInt(r.baseOffset)
    }
    const seen = {}
    for (const m of messages) {
      const n = seen[m.partition] || 0n
      seen[m.partition] = n + 1n
      emit({ key: m.key, partition: m.partition, offset: Number(base[m.partition] + n) })
    }
  } finally {
    await producer.disconnect()
  }
}

async function consume ([bootstrap, topic, group, maxS, timeoutS, isolation = 'read_committed']) {
  const max = parseInt(maxS, 10)
  const timeout = parseInt(timeoutS, 10)
  if (isolation !== 'read_committed' && isolation !== 'read_uncommitted') throw new Error(`unknown isolation ${isolation}`)
  const consumer = client(bootstrap).consumer({
    groupId: group,
    sessionTimeout: 10000,
    heartbeatInterval: 500,
    // disconnect waits for the fetch in flight: keep its long poll short.
    maxWaitTimeInMs: 500,
    readUncommitted: isolation === 'read_uncommitted',
  })
  await consumer.connect()
  const next = {}
  let got = 0
  let finish
  const finished = new Promise((resolve) => { finish = resolve })
  const timer = setTimeout(() => finish(), timeout)
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (got >= max) return
        emit({
          key: message.key === null ? null : message.key.toString('utf8'),
          value: message.value === null ? null : message.value.toString('utf8'),
          headers: headersOf(message.headers),
          partition,
          offset: Number(message.offset),
        })
        next[partition] = (BigInt(message.offset) + 1n).toString()
        got++
        if (got >= max) finish()
      },
    })
    await finished
    consumer.pause([{ topic }])
    const offsets = Object.keys(next).map((p) => ({ topic, partition: Number(p), offset: next[p] }))
    if (offsets.length > 0) await consumer.commitOffsets(offsets)
  } finally {
    clearTimeout(timer)
    await consumer.disconnect()
  }
}

async function admin ([bootstrap, topic, partsS]) {
  const parts = parseInt(partsS, 10)
  const adm = client(bootstrap).admin()
  await adm.connect()
  try {
    const created = await adm.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: parts, replicationFactor: 1 }] })
    emit({ step: 'create', created })
    const again = await adm.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    emit({ step: 'create-again', created: again })
    const names = await adm.listTopics()
    emit({ step: 'list', present: names.includes(topic) })
    const md = await adm.fetchTopicMetadata({ topics: [topic] })
    const t = md.topics.find((x) => x.name === topic)
    emit({
      step: 'describe',
      partitions: t.partitions.map((p) => p.partitionId).sort((a, b) => a - b),
      errors: t.partitions.map((p) => p.partitionErrorCode).filter((c) => c !== 0),
    })
    const offsets = await adm.fetchTopicOffsets(topic)
    emit({ step: 'offsets', offsets: offsets.map((o) => ({ partition: o.partition, low: o.low, high: o.high })).sort((a, b) => a.partition - b.partition) })
    await adm.deleteTopics({ topics: [topic] })
    const after = await adm.listTopics()
    emit({ step: 'delete', present: after.includes(topic) })
  } finally {
    await adm.disconnect()
  }
}

function transactionalProducer (bootstrap, transactionalId) {
  return client(bootstrap).producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 30000 })
}

async function txnProduce ([bootstrap, topic, txnId, prefix, partsS, ...countsS]) {
  const parts = parseInt(partsS, 10)
  const counts = countsS.map((c) => parseInt(c, 10))
  if (!(parts > 0) || counts.length !== 3 || !counts.every((c) => c > 0)) {
    throw new Error('want positive partitions and three positive counts')
  }
  const producer = transactionalProducer(bootstrap, txnId)
  await producer.connect()
  try {
    const phases = [['c1', counts[0], true], ['ab', counts[1], false], ['c2', counts[2], true]]
    for (const [phase, count, commit] of phases) {
      const messages = []
      for (let i = 0; i < count; i++) {
        messages.push({
          key: `${prefix}-${phase}-k${i}`,
          value: `${prefix}-${phase}-v${i}`,
          partition: i % parts,
          headers: { 'h-index': String(i) },
        })
      }
      const txn = await producer.transaction()
      let res
      try {
        res = await txn.send({ topic, acks: -1, messages })
      } catch (e) {
        await txn.abort()
        throw e
      }
      const base = {}
      for (const r of res) {
        if (r.errorCode !== 0) throw new Error(`${phase} partition ${r.partition}: error ${r.errorCode}`)
        base[r.partition] = BigInt(r.baseOffset)
      }
      const seen = {}
      for (const m of messages) {
        const n = seen[m.partition] || 0n
        seen[m.partition] = n + 1n
        emit({ key: m.key, partition: m.partition, offset: Number(base[m.partition] + n), phase })
      }
      if (commit) await txn.commit()
      else await txn.abort()
    }
  } finally {
    await producer.disconnect()
  }
}

// pipelineRun runs one consumer and transactional producer until it has
// committed want records or, with abortFirst, aborted its first batch; it
// returns the number of records committed.
async function pipelineRun (bootstrap, input, output, group, txnId, want, abortFirst, deadline) {
  const kafka = client(bootstrap)
  const producer = transactionalProducer(bootstrap, txnId)
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
  await producer.connect()
  await consumer.connect()
  let committed = 0
  let failed = null
  let finish
  const finished = new Promise((resolve) => { finish = resolve })
  const timer = setTimeout(() => finish(), deadline - Date.now())
  try {
    await consumer.subscribe({ topics: [input], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (committed >= want || failed || batch.messages.length === 0 || !isRunning() || isStale()) return
        try {
          const txn = await producer.transaction()
          await txn.send({
            topic: output,
            acks: -1,
            messages: batch.messages.map((m) => ({
              key: m.key,
              value: Buffer.concat([Buffer.from('out-'), m.value]),
              partition: batch.partition,
              headers: m.headers,
            })),
          })
          await txn.sendOffsets({
            consumerGroupId: group,
            topics: [{ topic: input, partitions: [{ partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() }] }],
          })
          if (abortFirst) {
            await txn.abort()
            emit({ step: 'abort', records: batch.messages.length })
            finish()
            return
          }
          await txn.commit()
          resolveOffset(batch.lastOffset())
          committed += batch.messages.length
          emit({ step: 'commit', records: batch.messages.length })
          await heartbeat()
          if (committed >= want) finish()
        } catch (e) {
          failed = e
          finish()
        }
      },
    })
    await finished
  } finally {
    clearTimeout(timer)
    await consumer.disconnect()
    await producer.disconnect()
  }
  if (failed) throw failed
  return committed
}

async function txnPipeline ([bootstrap, input, output, group, txnId, countS, timeoutS]) {
  const count = parseInt(countS, 10)
  const deadline = Date.now() + parseInt(timeoutS, 10)
  await pipelineRun(bootstrap, input, output, group, txnId, count, true, deadline)
  const committed = await pipelineRun(bootstrap, input, output, group, txnId, count, false, deadline)
  if (committed < count) throw new Error(`pipeline committed ${committed} of ${count} records before the timeout`)
}

async function main () {
  const [cmd, ...args] = process.argv.slice(2)
  const available = await registerCodecs()
  switch (cmd) {
    case 'codecs': emit({ codecs: available }); break
    case 'produce': await produce(args); break
    case 'consume': await consume(args); break
    case 'admin': await admin(args); break
    case 'txn-produce': await txnProduce(args); break
    case 'read': await consume(args); break
    case 'txn-pipeline': await txnPipeline(args); break
    default: throw new Error(`unknown command ${cmd}`)
  }
}

main().catch((e) => {
  process.stderr.write(`client.js: ${e.stack || e}\n`)
  process.exit(1)
})
