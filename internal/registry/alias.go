package registry

import (
	"context"
	"strings"
)

// Subject aliases, as Confluent Schema Registry applies them: a subject
// whose own config sets "alias" is read as the subject the alias names.
// Lookups follow it: GET /subjects/{s}/versions, .../versions/{v} (and its
// /schema and /referencedby), POST /subjects/{s} (lookup), POST
// /compatibility/subjects/{s}/... (checked against the aliased subject's
// versions under its config), and the broker's latest-schema reads.
// Writes never follow it: registering, deleting and configuring s act on s
// itself, so a registration under an alias creates versions of the alias
// subject (which its lookups then do not show while the alias is set).
//
// An alias is followed one hop (an alias of an alias is not followed
// further, so no chain can loop), only from the subject's own config (a
// context or global config cannot alias every subject), and an alias
// without a context prefix names a subject in the aliasing subject's
// context, as references do.

// aliasTarget parses an alias set on a subject of context sctx.
func aliasTarget(sctx, alias string) (subjectName, error) {
	if !strings.HasPrefix(alias, ":.") {
		alias = qualify(sctx, alias)
	}
	return parseSubject(alias, false)
}

// resolveAlias returns the subject lookups of sn read: the one its own
// config's alias names, or sn itself.
func (r *Registry) resolveAlias(ctx context.Context, sn subjectName) (subjectName, error) {
	if sn.name == "" {
		return sn, nil
	}
	c, ok, err := r.readConfig(ctx, sn.q, false)
	if err != nil || !ok || c.Alias == "" {
		return sn, err
	}
	target, err := aliasTarget(sn.ctx, c.Alias)
	if err != nil {
		// SetConfig refuses such an alias; one stored before it did is
		// not followed.
		return sn, nil
	}
	return target, nil
}

// parseLookupSubject parses a subject named by a lookup and follows its
// alias.
func (r *Registry) parseLookupSubject(ctx context.Context, subject string) (subjectName, error) {
	sn, err := parseSubject(subject, false)
	if err != nil {
		return sn, err
	}
	return r.resolveAlias(ctx, sn)
}
