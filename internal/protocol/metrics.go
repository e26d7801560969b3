package protocol

import (
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request phases of runnel_kafka_request_phase_seconds.
const (
	phaseQueue         = iota // frame read to handler start: mute, earlier responses, decode
	phaseHandle               // the handler (a produce: validation and enqueueing)
	phaseFlushSequence        // a produce: enqueued to sequenced (intake flush, log append, sequencer)
	phaseRespond              // writing the response
	numPhases
)

var phaseNames = [numPhases]string{"queue", "handle", "flush_sequence", "respond"}

// maxSoftware bounds the distinct client software name/version pairs of
// runnel_kafka_client_software; further pairs are counted as "other".
const maxSoftware = 100

// softwareOther is the name and version of pairs past maxSoftware.
const softwareOther = "other"

// metrics are the protocol's Prometheus collectors. A nil *metrics records
// nothing. Per api key collectors are resolved once (apiMetrics) so that a
// request costs no label lookup or allocation.
type metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	phases   *prometheus.HistogramVec
	throttle *prometheus.CounterVec
	sasl     *prometheus.CounterVec

	apis [apiKeySlots + 1]atomic.Pointer[apiMetrics] // the last: keys past the slots

	bytesIn, recordsIn, bytesOut, recordsOut *prometheus.CounterVec
	topicsMu                                 sync.RWMutex
	topics                                   map[string]*topicMetrics

	connsTotal    *prometheus.CounterVec
	live          *prometheus.GaugeVec
	software      *prometheus.GaugeVec
	softwareMu    sync.Mutex
	softwareLive  map[softwareKey]int // live connections by listener and software
	softwarePairs map[[2]string]int   // live connections by software, for the cap
}

// apiKeySlots is how many api keys have their own collectors; requests
// with other keys (none is served) share those labelled "unknown", so a
// client sending garbage cannot add series without bound.
const apiKeySlots = 128

// apiMetrics are one api key's collectors.
type apiMetrics struct {
	requests, errors, throttle prometheus.Counter
	latency                    prometheus.Observer
	phases                     [numPhases]prometheus.Observer // nil: the phase does not apply
}

// topicMetrics are one topic's traffic counters.
type topicMetrics struct {
	bytesIn, recordsIn, bytesOut, recordsOut prometheus.Counter
}

// softwareKey is a connection's entry in runnel_kafka_client_software; the
// zero value is a connection that did not announce its software.
type softwareKey struct {
	listener, name, version string
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "runnel", Subsystem: "kafka", Name: name, Help: help}, labels)
	}
	topicCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "runnel", Subsystem: "topic", Name: name, Help: help}, []string{"topic"})
	}
	m := &metrics{
		requests: counter("requests_total", "Kafka requests received, by api key.", "api_key"),
		errors:   counter("request_errors_total", "Kafka requests that failed to decode or closed the connection, by api key.", "api_key"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "runnel", Subsystem: "kafka", Name: "request_duration_seconds",
			Help:    "Time from decoding a Kafka request to its response being ready, by api key.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api_key"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "runnel", Subsystem: "kafka", Name: "request_phase_seconds",
			Help: "Time a Kafka request spends in each phase, by api key and phase: queue (frame read to handler start), " +
				"handle (the handler), flush_sequence (a produce from enqueued to sequenced), respond (writing the response).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}, []string{"api_key", "phase"}),
		throttle: counter("throttle_seconds_total", "Throttle time given to clients by their quotas (throttle_time_ms), by api key.", "api_key"),
		sasl:     counter("sasl_authentications_total", "SASL authentications (re-authentications included), by mechanism and result (success, failure).", "mechanism", "result"),

		bytesIn:    topicCounter("bytes_in_total", "Record batch bytes produced to a topic and accepted by the sequencer."),
		recordsIn:  topicCounter("records_in_total", "Records produced to a topic and accepted by the sequencer (those routed to a dead-letter topic excluded)."),
		bytesOut:   topicCounter("bytes_out_total", "Record batch bytes returned by fetches of a topic."),
		recordsOut: topicCounter("records_out_total", "Records returned by fetches of a topic, counted from batch headers (control batches excluded)."),
		topics:     make(map[string]*topicMetrics),

		connsTotal: counter("connections_total", "Client connections accepted, by listener.", "listener"),
		live: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "runnel", Subsystem: "kafka", Name: "connections",
			Help: "Open client connections, by listener."}, []string{"listener"}),
		software: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "runnel", Subsystem: "kafka", Name: "client_software",
			Help: "Open client connections by the software they announced in ApiVersions v3+ (at most " +
				strconv.Itoa(maxSoftware) + " name/version pairs at once, others as \"other\")."},
			[]string{"listener", "name", "version"}),
		softwareLive:  make(map[softwareKey]int),
		softwarePairs: make(map[[2]string]int),
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.phases, m.throttle, m.sasl,
		m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut, m.connsTotal, m.live, m.software)
	return m
}

// api returns the collectors of key, resolving them on first use.
func (m *metrics) api(key int16) *apiMetrics {
	slot, k := apiKeySlots, "unknown"
	if key >= 0 && int(key) < apiKeySlots {
		slot = int(key)
	}
	if a := m.apis[slot].Load(); a != nil {
		return a
	}
	if slot < apiKeySlots {
		k = strconv.Itoa(int(key))
	}
	a := &apiMetrics{
		requests: m.requests.WithLabelValues(k),
		errors:   m.errors.WithLabelValues(k),
		throttle: m.throttle.WithLabelValues(k),
		latency:  m.latency.WithLabelValues(k),
	}
	for ph := range numPhases {
		if ph == phaseFlushSequence && key != apiKeyProduce {
			continue
		}
		a.phases[ph] = m.phases.WithLabelValues(k, phaseNames[ph])
	}
	if !m.apis[slot].CompareAndSwap(nil, a) {
		a = m.apis[slot].Load()
	}
	return a
}

const apiKeyProduce = 0

func (m *metrics) observe(key int16, start time.Time, failed bool) {
	if m == nil {
		return
	}
	a := m.api(key)
	a.requests.Inc()
	if failed {
		a.errors.Inc()
	}
	a.latency.Observe(time.Since(start).Seconds())
}

// phase records that a request of key spent from..to in phase ph.
func (m *metrics) phase(key int16, ph int, from, to time.Time) {
	if m == nil {
		return
	}
	if o := m.api(key).phases[ph]; o != nil {
		o.Observe(to.Sub(from).Seconds())
	}
}

// throttled records a throttle given to a request of key.
func (m *metrics) throttled(key int16, d time.Duration) {
	if m == nil {
		return
	}
	m.api(key).throttle.Add(d.Seconds())
}

func (m *metrics) saslResult(mechanism string, ok bool) {
	if m == nil {
		return
	}
	result := "failure"
	if ok {
		result = "success"
	}
	m.sasl.WithLabelValues(mechanism, result).Inc()
}

// topic returns the counters of topic, resolving them on first use.
func (m *metrics) topic(name string) *topicMetrics {
	m.topicsMu.RLock()
	t := m.topics[name]
	m.topicsMu.RUnlock()
	if t != nil {
		return t
	}
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	if t = m.topics[name]; t == nil {
		t = &topicMetrics{
			bytesIn: m.bytesIn.WithLabelValues(name), recordsIn: m.recordsIn.WithLabelValues(name),
			bytesOut: m.bytesOut.WithLabelValues(name), recordsOut: m.recordsOut.WithLabelValues(name),
		}
		m.topics[name] = t
	}
	return t
}

// produced counts the record batches of one accepted produce to topic;
// routed of their records went to a dead-letter topic instead.
func (m *metrics) produced(topic string, batches []byte, routed int) {
	if m == nil {
		return
	}
	t := m.topic(topic)
	t.bytesIn.Add(float64(len(batches)))
	t.recordsIn.Add(float64(max(batchRecords(batches)-routed, 0)))
}

// fetched counts the record batches one fetch returned of topic.
func (m *metrics) fetched(topic string, batches []byte) {
	if m == nil || len(batches) == 0 {
		return
	}
	t := m.topic(topic)
	t.bytesOut.Add(float64(len(batches)))
	t.recordsOut.Add(float64(batchRecords(batches)))
}

// forgetTopic drops the series of a deleted topic.
func (m *metrics) forgetTopic(name string) {
	if m == nil {
		return
	}
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	delete(m.topics, name)
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut} {
		v.DeleteLabelValues(name)
	}
}

// Offsets in a magic 2 record batch header.
const (
	batchLengthAt     = 8  // int32, bytes after the field
	batchAttrsAt      = 21 // int16
	batchProducerIDAt = 43 // int64
	batchRecordsAt    = 57 // int32 record count
	batchHeaderLen    = 61
	attrControl       = 0x20
)

// batchRecords counts the records of the complete record batches in b from
// their headers, without decoding records; control batches (transaction
// markers) count none.
func batchRecords(b []byte) int {
	n := 0
	for len(b) >= batchHeaderLen {
		size := int(int32(binary.BigEndian.Uint32(b[batchLengthAt:]))) + 12
		if size < batchHeaderLen || size > len(b) {
			break
		}
		if binary.BigEndian.Uint16(b[batchAttrsAt:])&attrControl == 0 {
			n += max(int(int32(binary.BigEndian.Uint32(b[batchRecordsAt:]))), 0)
		}
		b = b[size:]
	}
	return n
}

// connOpened counts a new connection on listener.
func (m *metrics) connOpened(listener string) {
	if m == nil {
		return
	}
	m.connsTotal.WithLabelValues(listener).Inc()
	m.live.WithLabelValues(listener).Inc()
}

// connClosed counts a connection on listener gone, with the software it
// announced.
func (m *metrics) connClosed(listener string, sw softwareKey) {
	if m == nil {
		return
	}
	m.live.WithLabelValues(listener).Dec()
	m.clientSoftware(sw, softwareKey{})
}

// clientSoftware moves a connection from the software it announced before
// (prev, zero if none) to name and version on listener, and returns the
// key it is counted under: the pair itself, or "other" once maxSoftware
// pairs are live. A zero next only removes prev.
func (m *metrics) clientSoftware(prev, next softwareKey) softwareKey {
	if m == nil || prev == next {
		return next
	}
	m.softwareMu.Lock()
	defer m.softwareMu.Unlock()
	if prev != (softwareKey{}) {
		pair := [2]string{prev.name, prev.version}
		if m.softwareLive[prev]--; m.softwareLive[prev] <= 0 {
			delete(m.softwareLive, prev)
			m.software.DeleteLabelValues(prev.listener, prev.name, prev.version)
		} else {
			m.software.WithLabelValues(prev.listener, prev.name, prev.version).Dec()
		}
		if _, ok := m.softwarePairs[pair]; ok {
			if m.softwarePairs[pair]--; m.softwarePairs[pair] <= 0 {
				delete(m.softwarePairs, pair)
			}
		}
	}
	if next == (softwareKey{}) {
		return next
	}
	pair := [2]string{next.name, next.version}
	if _, ok := m.softwarePairs[pair]; ok || len(m.softwarePairs) < maxSoftware {
		m.softwarePairs[pair]++
	} else {
		next.name, next.version = softwareOther, softwareOther
	}
	m.softwareLive[next]++
	m.software.WithLabelValues(next.listener, next.name, next.version).Inc()
	return next
}
