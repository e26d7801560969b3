package asyncapi

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"testing"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
)

// fakeTopics is a cluster's topics in memory, validating configs as the
// engine does.
type fakeTopics struct {
	topics  map[string]Topic
	created []string
}

func newFakeTopics() *fakeTopics { return &fakeTopics{topics: map[string]Topic{}} }

func (f *fakeTopics) add(name string, partitions int32, overrides map[string]string) {
	eff := map[string]string{}
	for _, d := range config.TopicDefs() {
		eff[d.Name] = d.Default
	}
	ov := map[string]string{}
	for k, v := range overrides {
		eff[k], ov[k] = v, v
	}
	f.topics[name] = Topic{Name: name, Partitions: partitions, Overrides: ov, Effective: eff}
}

func (f *fakeTopics) List() []Topic {
	var out []Topic
	for _, t := range f.topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeTopics) Get(name string) (Topic, bool) {
	t, ok := f.topics[name]
	return t, ok
}

func (f *fakeTopics) Create(_ context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (int32, error) {
	if err := config.ValidateTopicConfigs(configs); err != nil {
		return 0, governance.Errorf(http.StatusBadRequest, "topic %s: %v", name, err)
	}
	if _, ok := f.topics[name]; ok {
		return 0, governance.ErrConflict
	}
	if partitions == 0 {
		partitions = 1
	}
	if !validateOnly {
		f.add(name, partitions, configs)
		f.created = append(f.created, name)
	}
	return partitions, nil
}

// fakeSchemas is a registry in memory: a schema is registered when its
// type and text are; incompatible answers what the test set.
type fakeSchemas struct {
	subjects     map[string][]Schema
	incompatible map[string][]string
	failRegister error
	nextID       int
}

func newFakeSchemas() *fakeSchemas {
	return &fakeSchemas{subjects: map[string][]Schema{}, incompatible: map[string][]string{}}
}

func (f *fakeSchemas) add(subject string, s Schema) {
	f.nextID++
	s.Version, s.ID = len(f.subjects[subject])+1, f.nextID
	f.subjects[subject] = append(f.subjects[subject], s)
}

func (f *fakeSchemas) Latest(_ context.Context, subject string) (Schema, bool, error) {
	vs := f.subjects[subject]
	if len(vs) == 0 {
		return Schema{}, false, nil
	}
	return vs[len(vs)-1], true, nil
}

func (f *fakeSchemas) Registered(_ context.Context, subject string, s Schema) (bool, error) {
	for _, v := range f.subjects[subject] {
		if v.Type == s.Type && v.Text == s.Text {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeSchemas) Incompatible(_ context.Context, subject string, s Schema) ([]string, error) {
	return f.incompatible[subject], nil
}

func (f *fakeSchemas) Register(_ context.Context, subject string, s Schema) (int, int, error) {
	if f.failRegister != nil {
		return 0, 0, f.failRegister
	}
	f.add(subject, s)
	v := f.subjects[subject][len(f.subjects[subject])-1]
	return v.Version, v.ID, nil
}

// fakeCatalog holds products in memory.
type fakeCatalog struct {
	products map[string]Product
	setBy    []string
}

func newFakeCatalog() *fakeCatalog { return &fakeCatalog{products: map[string]Product{}} }

func (f *fakeCatalog) Product(_ context.Context, topic string) (Product, bool, error) {
	p, ok := f.products[topic]
	return p, ok, nil
}

func (f *fakeCatalog) SetProduct(_ context.Context, a governance.Actor, topic string, p Product) error {
	f.products[topic] = p
	f.setBy = append(f.setBy, a.String()+" "+topic)
	return nil
}

// fakeLineage answers fixed clients per topic.
type fakeLineage map[string]Clients

func (f fakeLineage) Clients(_ context.Context, topics []string) (map[string]Clients, error) {
	out := map[string]Clients{}
	for _, t := range topics {
		if c, ok := f[t]; ok {
			out[t] = c
		}
	}
	return out, nil
}

// failingLineage fails every call.
type failingLineage struct{}

func (failingLineage) Clients(context.Context, []string) (map[string]Clients, error) {
	return nil, errors.New("lineage is down")
}

func newService(t *testing.T, o Options) *Service {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeAuditor keeps the events it records, or fails with err.
type fakeAuditor struct {
	events []governance.Event
	err    error
}

func (f *fakeAuditor) Record(_ context.Context, e governance.Event) error {
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, e)
	return nil
}
