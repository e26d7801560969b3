package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Schema GUIDs (Confluent 8): every schema has a "guid", a UUID naming its
// content across contexts, while its numeric id is per context. Here a
// GUID is derived from the schema's identity hash (the SHA-256 of its type,
// canonical text, references, metadata and rule set, stored with the
// schema and keyed under hashes/): its first 16 bytes with the version
// (8, RFC 9562's custom layout) and variant bits set. So it is the same
// through every broker and across restarts, the same for the same content
// in every context, different where the id would differ, and schemas
// registered before GUIDs existed have one too. A GUID is looked up by the
// first 48 bits of the hash, which it keeps intact, under each context's
// hashes/ prefix.

// guidOf returns the GUID of an identity hash (hex), "" for none.
func guidOf(hash string) string {
	b, err := hex.DecodeString(hash)
	if err != nil || len(b) < 16 {
		return ""
	}
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// hashPrefixOf returns the hash prefix a well-formed GUID keeps intact (12
// hex digits), or false.
func hashPrefixOf(guid string) (string, bool) {
	if len(guid) != 36 || guid[8] != '-' || guid[13] != '-' || guid[18] != '-' || guid[23] != '-' {
		return "", false
	}
	h := strings.ReplaceAll(guid, "-", "")
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	return h[:12], true
}

// ContextID is a schema's id in one context.
type ContextID struct {
	Context string `json:"context"`
	ID      int    `json:"id"`
}

// SchemaByGUID returns the schema with a GUID and its id in each context
// where a subject version uses it (soft-deleted ones included, as for
// SchemaInfo), contexts sorted, the default one first. A GUID no subject
// version uses is ErrSchemaNotFound.
func (r *Registry) SchemaByGUID(ctx context.Context, guid string) (StoredSchema, []ContextID, error) {
	done, err := r.enter()
	if err != nil {
		return StoredSchema{}, nil, err
	}
	defer done()
	notFound := errf(ErrSchemaNotFound, "Schema %s not found", guid)
	guid = strings.ToLower(guid)
	prefix, ok := hashPrefixOf(guid)
	if !ok {
		return StoredSchema{}, nil, notFound
	}
	subs, err := r.listSubjects(ctx)
	if err != nil {
		return StoredSchema{}, nil, err
	}
	ctxs := map[string]bool{defaultContext: true}
	for q := range subs {
		ctxs[contextOf(q)] = true
	}
	var first StoredSchema
	var ids []ContextID
	for _, sctx := range sortedKeys(ctxs) {
		hashes := r.kCtx(sctx) + "/hashes/"
		resp, err := r.cli.Get(ctx, hashes+prefix, clientv3.WithPrefix())
		if err != nil {
			return StoredSchema{}, nil, fmt.Errorf("registry: read schema hashes: %w", err)
		}
		for _, kv := range resp.Kvs {
			if guidOf(strings.TrimPrefix(string(kv.Key), hashes)) != guid {
				continue
			}
			var id int
			if _, err := fmt.Sscan(string(kv.Value), &id); err != nil {
				return StoredSchema{}, nil, fmt.Errorf("registry: corrupt schema hash %s: %w", kv.Key, err)
			}
			info, err := r.schemaInfo(ctx, sctx, id)
			if errors.Is(err, ErrSchemaNotFound) {
				continue
			}
			if err != nil {
				return StoredSchema{}, nil, err
			}
			if len(ids) == 0 {
				first = info.StoredSchema
			}
			ids = append(ids, ContextID{Context: sctx, ID: id})
			break
		}
	}
	if len(ids) == 0 {
		return StoredSchema{}, nil, notFound
	}
	sort.SliceStable(ids, func(i, j int) bool { return ids[i].Context < ids[j].Context })
	return first, ids, nil
}

func (r *Registry) httpSchemaByGUID(_ http.ResponseWriter, req *http.Request) (any, error) {
	st, ids, err := r.SchemaByGUID(req.Context(), req.PathValue("guid"))
	if err != nil {
		return nil, err
	}
	if st.Schema, err = r.schemaText(req, ids[0].Context, st); err != nil {
		return nil, err
	}
	return byIDResponse(st), nil
}

func (r *Registry) httpIDsByGUID(_ http.ResponseWriter, req *http.Request) (any, error) {
	_, ids, err := r.SchemaByGUID(req.Context(), req.PathValue("guid"))
	return ids, err
}
