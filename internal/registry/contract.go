package registry

import "slices"

// mergeMetadata layers over on base as Confluent does: tags and properties
// merged key by key (over wins), sensitive names united. nil stays nil.
func mergeMetadata(base, over *Metadata) *Metadata {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	out := &Metadata{}
	if len(base.Tags)+len(over.Tags) > 0 {
		out.Tags = map[string][]string{}
		for k, v := range base.Tags {
			out.Tags[k] = v
		}
		for k, v := range over.Tags {
			out.Tags[k] = v
		}
	}
	if len(base.Properties)+len(over.Properties) > 0 {
		out.Properties = map[string]string{}
		for k, v := range base.Properties {
			out.Properties[k] = v
		}
		for k, v := range over.Properties {
			out.Properties[k] = v
		}
	}
	for _, s := range append(slices.Clone(base.Sensitive), over.Sensitive...) {
		if !slices.Contains(out.Sensitive, s) {
			out.Sensitive = append(out.Sensitive, s)
		}
	}
	return out
}

// mergeRuleSet layers over on base: rules merged by name within each list
// (an overriding rule replaces the base rule of the same name in place,
// new ones are appended). nil stays nil.
func mergeRuleSet(base, over *RuleSet) *RuleSet {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	return &RuleSet{
		MigrationRules: mergeRules(base.MigrationRules, over.MigrationRules),
		DomainRules:    mergeRules(base.DomainRules, over.DomainRules),
		EncodingRules:  mergeRules(base.EncodingRules, over.EncodingRules),
	}
}

func mergeRules(base, over []Rule) []Rule {
	out := slices.Clone(base)
	for _, r := range over {
		if i := slices.IndexFunc(out, func(b Rule) bool { return b.Name == r.Name }); i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	return out
}
