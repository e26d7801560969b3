package lineage

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Node kinds of the graph.
const (
	NodeTopic    = "topic"
	NodeProducer = "producer"
	NodeConsumer = "consumer" // a client fetching outside any group
	NodeGroup    = "group"
	NodeTable    = "table"
	NodeDLQ      = "dlq"
	NodeRetry    = "retry"
)

// Edge kinds of the graph.
const (
	EdgeProduces     = "produces"
	EdgeConsumes     = "consumes"
	EdgeMaterializes = "materializes"
	EdgeDeadletters  = "deadletters"
)

// Node is a node of the graph: a topic (kind dlq or retry when it is one),
// a producing client, a consumer group (a job: its inputs and, through
// its transactional id, its outputs), a groupless consumer or a table.
type Node struct {
	ID        string `json:"id"` // "<kind>:<name>"; dead-letter and retry topics keep "topic:<name>"
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Exists    *bool  `json:"exists,omitempty"`    // topics: whether the topic exists now
	Namespace string `json:"namespace,omitempty"` // tables
}

// Window is an edge's traffic over the last WindowSeconds.
type Window struct {
	Seconds int   `json:"seconds"`
	Bytes   int64 `json:"bytes"`
	Records int64 `json:"records"`
}

// GraphEdge is an edge of the graph, observed (with its client and its
// traffic) or configured (materializes and deadletters: no client, no
// times).
type GraphEdge struct {
	From            string     `json:"from"`
	To              string     `json:"to"`
	Kind            string     `json:"kind"`
	Principal       string     `json:"principal,omitempty"`
	ClientID        string     `json:"clientId,omitempty"`
	Software        string     `json:"software,omitempty"`
	TransactionalID string     `json:"transactionalId,omitempty"`
	Group           string     `json:"group,omitempty"`
	FirstSeen       *time.Time `json:"firstSeen,omitempty"`
	LastSeen        *time.Time `json:"lastSeen,omitempty"`
	Bytes           int64      `json:"bytes"`
	Records         int64      `json:"records"`
	Window          *Window    `json:"window,omitempty"`
}

// Graph is the lineage graph.
type Graph struct {
	Nodes []Node      `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// clientIdent is a client across its connections.
type clientIdent struct{ principal, clientID string }

// outKey merges observed edges into one graph edge.
type outKey struct {
	kind, from, to                string
	principal, clientID, software string
	group, txnID                  string
}

// TopicID is the node id of a topic.
func TopicID(t string) string { return NodeTopic + ":" + t }

// GroupID is the node id of a consumer group.
func GroupID(g string) string { return NodeGroup + ":" + g }

// TableID is the node id of a table, "<namespace>.<name>".
func TableID(t string) string { return NodeTable + ":" + t }

// clientName names a client's node: its client id, else its principal.
func clientName(e *Edge) string {
	if e.ClientID != "" {
		return e.ClientID
	}
	return e.Principal
}

// Build draws the graph from observed edges (merged across brokers), the
// existing topics and the groups' retry targets:
//   - a produce is from its producing client, or, when its transactional
//     id commits a group's offsets (TxnOffsetCommit), from that group: the
//     group is the job that consumes its input topics and produces its
//     outputs in transactions;
//   - a fetch is into its share group (ShareFetch), else into the group
//     its client (principal and client id) commits or subscribes for that
//     topic, else into a groupless consumer;
//   - a commit or subscription is a consumes edge of the group even
//     without a fetch seen (its bytes are then 0);
//   - a table-enabled topic materializes its table, a table source
//     materializes its topic, and dead-letter and retry topics hang off the
//     topic or group that feeds them.
func Build(edges []Edge, topics []Topic, groupTargets func(string) GroupTargets, now time.Time) Graph {
	txnGroup := map[string]*Edge{} // transactional id -> the latest commit naming it
	linked := map[clientIdent]map[string][]string{}
	for i := range edges {
		e := &edges[i]
		if e.Kind != Commit && e.Kind != Member {
			continue
		}
		if e.TransactionalID != "" {
			if cur := txnGroup[e.TransactionalID]; cur == nil || e.Last > cur.Last {
				txnGroup[e.TransactionalID] = e
			}
		}
		id := clientIdent{e.Principal, e.ClientID}
		if linked[id] == nil {
			linked[id] = map[string][]string{}
		}
		if !slices.Contains(linked[id][e.Topic], e.Group) {
			linked[id][e.Topic] = append(linked[id][e.Topic], e.Group)
		}
	}
	for _, byTopic := range linked {
		for _, gs := range byTopic {
			slices.Sort(gs)
		}
	}

	b := newBuilder(now)
	for i := range edges {
		e := &edges[i]
		k := outKey{principal: e.Principal, clientID: e.ClientID, software: e.Software}
		switch e.Kind {
		case Produce:
			k.kind, k.to, k.txnID = EdgeProduces, TopicID(e.Topic), e.TransactionalID
			if c := txnGroup[e.TransactionalID]; e.TransactionalID != "" && c != nil {
				k.from, k.group = GroupID(c.Group), c.Group
				b.node(k.from, NodeGroup, c.Group)
			} else {
				k.from = NodeProducer + ":" + clientName(e)
				b.node(k.from, NodeProducer, clientName(e))
			}
		case Fetch:
			k.kind, k.from = EdgeConsumes, TopicID(e.Topic)
			group := e.Group // a share fetch names its share group
			if gs := linked[clientIdent{e.Principal, e.ClientID}][e.Topic]; group == "" && len(gs) > 0 {
				group = gs[0]
			}
			if group != "" {
				k.to, k.group = GroupID(group), group
				b.node(k.to, NodeGroup, group)
			} else {
				k.to = NodeConsumer + ":" + clientName(e)
				b.node(k.to, NodeConsumer, clientName(e))
			}
		case Commit, Member:
			k.kind, k.from, k.to, k.group = EdgeConsumes, TopicID(e.Topic), GroupID(e.Group), e.Group
			b.node(k.to, NodeGroup, e.Group)
		default:
			continue
		}
		b.node(TopicID(e.Topic), NodeTopic, e.Topic)
		b.observed(k, e)
	}

	for _, t := range topics {
		b.node(TopicID(t.Name), NodeTopic, t.Name)
		b.exists[TopicID(t.Name)] = true
		if t.Table != nil {
			id := TableID(t.Table.Namespace + "." + t.Table.Name)
			b.tableNode(id, *t.Table)
			b.configured(TopicID(t.Name), id, EdgeMaterializes)
		}
		if t.Source != "" {
			id := TableID(t.Source)
			ns, name := splitIdent(t.Source)
			b.tableNode(id, Table{Namespace: ns, Name: name})
			b.configured(id, TopicID(t.Name), EdgeMaterializes)
		}
		for _, d := range t.DeadLetters {
			b.node(TopicID(d), NodeDLQ, d)
			b.configured(TopicID(t.Name), TopicID(d), EdgeDeadletters)
		}
	}
	if groupTargets != nil {
		var groups []string
		for id, n := range b.nodes {
			if n.Kind == NodeGroup {
				groups = append(groups, id)
			}
		}
		slices.Sort(groups)
		for _, id := range groups {
			g := b.nodes[id].Name
			tg := groupTargets(g)
			for _, r := range tg.Retry {
				b.node(TopicID(r), NodeRetry, r)
				b.configured(id, TopicID(r), EdgeDeadletters)
			}
			if tg.DeadLetter != "" {
				b.node(TopicID(tg.DeadLetter), NodeDLQ, tg.DeadLetter)
				b.configured(id, TopicID(tg.DeadLetter), EdgeDeadletters)
			}
		}
	}
	return b.graph()
}

// splitIdent splits "ns.name" at its last dot ("default" without one); a
// metadata file location has no namespace.
func splitIdent(s string) (string, string) {
	if strings.Contains(s, "/") {
		return "", s
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return s[:i], s[i+1:]
		}
	}
	return "default", s
}

// builder accumulates a graph.
type builder struct {
	now    time.Time
	nodes  map[string]*Node
	exists map[string]bool
	edges  map[outKey]*outEdge
}

type outEdge struct {
	GraphEdge
	first, last int64
	win         Window
	observed    bool
}

func newBuilder(now time.Time) *builder {
	return &builder{now: now, nodes: map[string]*Node{}, exists: map[string]bool{}, edges: map[outKey]*outEdge{}}
}

// node adds a node; a topic already known as a dead-letter or retry topic
// keeps that kind.
func (b *builder) node(id, kind, name string) {
	if n := b.nodes[id]; n != nil {
		if n.Kind == NodeTopic && (kind == NodeDLQ || kind == NodeRetry) {
			n.Kind = kind
		}
		return
	}
	b.nodes[id] = &Node{ID: id, Kind: kind, Name: name}
}

func (b *builder) tableNode(id string, t Table) {
	if b.nodes[id] == nil {
		b.nodes[id] = &Node{ID: id, Kind: NodeTable, Name: t.Name, Namespace: t.Namespace}
	}
}

// observed adds an observed edge's traffic to the graph edge k.
func (b *builder) observed(k outKey, e *Edge) {
	o := b.edges[k]
	if o == nil {
		o = &outEdge{GraphEdge: GraphEdge{From: k.from, To: k.to, Kind: k.kind, Principal: k.principal, ClientID: k.clientID,
			Software: k.software, Group: k.group, TransactionalID: k.txnID}, first: e.First, observed: true}
		b.edges[k] = o
	}
	o.first = min(o.first, e.First)
	o.last = max(o.last, e.Last)
	o.Bytes += e.Bytes
	o.Records += e.Records
	wb, wr := e.WindowTotals(b.now)
	o.win.Bytes += wb
	o.win.Records += wr
	if o.TransactionalID == "" && e.TransactionalID != "" {
		o.TransactionalID = e.TransactionalID
	}
}

// configured adds an edge from configuration.
func (b *builder) configured(from, to, kind string) {
	k := outKey{kind: kind, from: from, to: to}
	if b.edges[k] == nil {
		b.edges[k] = &outEdge{GraphEdge: GraphEdge{From: from, To: to, Kind: kind}}
	}
}

func (b *builder) graph() Graph {
	g := Graph{Nodes: make([]Node, 0, len(b.nodes)), Edges: make([]GraphEdge, 0, len(b.edges))}
	for id, n := range b.nodes {
		c := *n
		if c.Kind == NodeTopic || c.Kind == NodeDLQ || c.Kind == NodeRetry {
			ex := b.exists[id]
			c.Exists = &ex
		}
		g.Nodes = append(g.Nodes, c)
	}
	slices.SortFunc(g.Nodes, func(x, y Node) int { return cmp.Compare(x.ID, y.ID) })
	for _, o := range b.edges {
		e := o.GraphEdge
		if o.observed {
			f, l := time.UnixMilli(o.first).UTC(), time.UnixMilli(o.last).UTC()
			e.FirstSeen, e.LastSeen = &f, &l
			w := o.win
			w.Seconds = WindowSeconds
			e.Window = &w
		}
		g.Edges = append(g.Edges, e)
	}
	slices.SortFunc(g.Edges, compareGraphEdges)
	return g
}

func compareGraphEdges(x, y GraphEdge) int {
	return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To), cmp.Compare(x.Kind, y.Kind),
		cmp.Compare(x.Principal, y.Principal), cmp.Compare(x.ClientID, y.ClientID), cmp.Compare(x.Software, y.Software),
		cmp.Compare(x.Group, y.Group), cmp.Compare(x.TransactionalID, y.TransactionalID))
}

// HasNode reports whether the graph has a node of id.
func (g Graph) HasNode(id string) bool {
	_, found := slices.BinarySearchFunc(g.Nodes, id, func(n Node, id string) int { return cmp.Compare(n.ID, id) })
	return found
}

// Around returns the part of g around the node id: with all false the
// edges touching it (one hop), with all true everything upstream and
// downstream of it (the edges followed backwards from it, and forwards).
func (g Graph) Around(id string, all bool) Graph {
	keep := make([]bool, len(g.Edges))
	if !all {
		for i, e := range g.Edges {
			keep[i] = e.From == id || e.To == id
		}
	} else {
		out, in := map[string][]int{}, map[string][]int{}
		for i, e := range g.Edges {
			out[e.From] = append(out[e.From], i)
			in[e.To] = append(in[e.To], i)
		}
		for _, forward := range []bool{true, false} {
			adj := out
			if !forward {
				adj = in
			}
			seen := map[string]bool{id: true}
			queue := []string{id}
			for len(queue) > 0 {
				n := queue[0]
				queue = queue[1:]
				for _, i := range adj[n] {
					keep[i] = true
					next := g.Edges[i].To
					if !forward {
						next = g.Edges[i].From
					}
					if !seen[next] {
						seen[next] = true
						queue = append(queue, next)
					}
				}
			}
		}
	}
	used := map[string]bool{id: true}
	out := Graph{Nodes: []Node{}, Edges: []GraphEdge{}}
	for i, e := range g.Edges {
		if keep[i] {
			out.Edges = append(out.Edges, e)
			used[e.From], used[e.To] = true, true
		}
	}
	for _, n := range g.Nodes {
		if used[n.ID] {
			out.Nodes = append(out.Nodes, n)
		}
	}
	return out
}
