package allowlist

import (
	"fmt"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// MaxDataSize bounds the data of an allowlist ConfigMap: the API server
// refuses ConfigMaps whose keys and values exceed 1 MiB.
const MaxDataSize = 1 << 20

// fileSpec is everything one allowlist certificate file is rendered from.
type fileSpec struct {
	key      keygen.PublicKey
	identity string
	grant    string
	until    string
}

// renderedFile is a rendered certificate with the inputs it came from.
type renderedFile struct {
	spec    fileSpec
	content string
}

// content is the full rendered content of one allowlist.
type content struct {
	// data is the ConfigMap data: certificate files and index.json.
	data map[string]string
	// keys is the number of admitted keys (certificate files).
	keys int
	// identities is the number of distinct identities.
	identities int
	// size is the byte size of data as the API server counts it.
	size int
}

// withMode adds the server's mode (enforce or audit) to the allowlist's
// data, as the file sidecars read it from.
func (c *content) withMode(mode string) {
	c.data[filecontract.ModeFile] = mode
	c.size += len(filecontract.ModeFile) + len(mode)
}

// renderer renders allowlists deterministically and keeps, per server, the
// files of its last render, so an unchanged file is not rendered again.
type renderer struct {
	mu   sync.Mutex
	last map[types.NamespacedName]map[string]renderedFile
}

// render renders the allowlist of server from its files (file name to
// inputs).
func (r *renderer) render(server types.NamespacedName, files map[string]fileSpec) (*content, error) {
	r.mu.Lock()
	if r.last == nil {
		r.last = map[types.NamespacedName]map[string]renderedFile{}
	}
	prev := r.last[server]
	r.mu.Unlock()

	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)

	next := make(map[string]renderedFile, len(files))
	c := &content{data: make(map[string]string, len(files)+1), keys: len(files)}
	entries := make([]IndexEntry, 0, len(files))
	idents := make(map[string]struct{}, len(files))
	for _, name := range names {
		spec := files[name]
		rf, ok := prev[name]
		if !ok || rf.spec != spec {
			b, err := secretlayout.PublicCertificate(spec.key, map[string]string{
				filecontract.MetadataIdentity: spec.identity,
				filecontract.MetadataGrant:    spec.grant,
			})
			if err != nil {
				return nil, fmt.Errorf("render allowlist file %s: %w", name, err)
			}
			rf = renderedFile{spec: spec, content: string(b)}
		}
		next[name] = rf
		c.data[name] = rf.content
		c.size += len(name) + len(rf.content)
		entries = append(entries, IndexEntry{Key: spec.key.String(), Identity: spec.identity, Grant: spec.grant, File: name, Until: spec.until})
		idents[spec.identity] = struct{}{}
	}
	index, err := MarshalIndex(entries)
	if err != nil {
		return nil, err
	}
	c.data[filecontract.IndexFile] = string(index)
	c.size += len(filecontract.IndexFile) + len(index)
	c.identities = len(idents)

	r.mu.Lock()
	r.last[server] = next
	r.mu.Unlock()
	return c, nil
}

// forget drops the renders of a server that is gone.
func (r *renderer) forget(server types.NamespacedName) {
	r.mu.Lock()
	delete(r.last, server)
	r.mu.Unlock()
}
