package allowlist

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/zmqauth/zmqauth/filecontract"
)

// IndexEntry is one entry of an allowlist's index.json: one admitted key.
type IndexEntry struct {
	// Key is the admitted public key in Z85.
	Key string `json:"key"`
	// Identity is "<namespace>/<name>" of a CurveClient, or a raw key's name.
	Identity string `json:"identity"`
	// Grant says what admitted the key (GrantClientRef, ...,
	// "clustercurvegrant/<name>").
	Grant string `json:"grant"`
	// File is the data key of the key's zcert certificate.
	File string `json:"file"`
	// Until is, for a client's previous key during its rotation overlap,
	// when it stops being admitted (RFC 3339); empty otherwise.
	Until string `json:"until,omitempty"`
}

// MarshalIndex renders index.json: a JSON list, one entry per line, in the
// order given (the caller sorts by file).
func MarshalIndex(entries []IndexEntry) ([]byte, error) {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("marshal index entry %s: %w", e.File, err)
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n")
		b.Write(line)
	}
	b.WriteString("\n]\n")
	return []byte(b.String()), nil
}

// ParseIndex parses index.json.
func ParseIndex(data []byte) ([]IndexEntry, error) {
	var entries []IndexEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filecontract.IndexFile, err)
	}
	return entries, nil
}

// Index is a parsed allowlist index, for lookups.
type Index struct {
	// Entries are the index entries in file order.
	Entries []IndexEntry
	byKey   map[string][]int
	idents  map[string]struct{}
}

// newIndex builds the lookup tables of entries.
func newIndex(entries []IndexEntry) *Index {
	ix := &Index{Entries: entries, byKey: make(map[string][]int, len(entries)), idents: make(map[string]struct{}, len(entries))}
	for i, e := range entries {
		ix.byKey[e.Key] = append(ix.byKey[e.Key], i)
		ix.idents[e.Identity] = struct{}{}
	}
	return ix
}

// Lookup returns the entry admitting key (Z85) for identity.
func (ix *Index) Lookup(identity, key string) (IndexEntry, bool) {
	if ix == nil {
		return IndexEntry{}, false
	}
	for _, i := range ix.byKey[key] {
		if ix.Entries[i].Identity == identity {
			return ix.Entries[i], true
		}
	}
	return IndexEntry{}, false
}

// HasKey reports whether key (Z85) is admitted, whoever it belongs to.
func (ix *Index) HasKey(key string) bool {
	if ix == nil {
		return false
	}
	return len(ix.byKey[key]) > 0
}

// Identities returns the number of distinct identities in the index.
func (ix *Index) Identities() int {
	if ix == nil {
		return 0
	}
	return len(ix.idents)
}

// IndexCache memoizes parsed allowlist indexes by ConfigMap and
// resourceVersion, so thousands of CurveClients reading one server's
// allowlist parse it once per version. It is safe for concurrent use.
type IndexCache struct {
	mu sync.Mutex
	m  map[types.NamespacedName]cachedIndex
}

type cachedIndex struct {
	uid, rv string
	ix      *Index
	err     error
}

// NewIndexCache returns an empty IndexCache.
func NewIndexCache() *IndexCache {
	return &IndexCache{m: map[types.NamespacedName]cachedIndex{}}
}

// Get returns the parsed index of an allowlist ConfigMap. A ConfigMap
// without index.json has an empty index.
func (c *IndexCache) Get(cm *corev1.ConfigMap) (*Index, error) {
	key := types.NamespacedName{Namespace: cm.Namespace, Name: cm.Name}
	c.mu.Lock()
	if e, ok := c.m[key]; ok && e.uid == string(cm.UID) && e.rv == cm.ResourceVersion && cm.ResourceVersion != "" {
		c.mu.Unlock()
		return e.ix, e.err
	}
	c.mu.Unlock()
	var ix *Index
	var err error
	if data, ok := cm.Data[filecontract.IndexFile]; ok {
		var entries []IndexEntry
		if entries, err = ParseIndex([]byte(data)); err == nil {
			ix = newIndex(entries)
		}
	} else {
		ix = newIndex(nil)
	}
	c.mu.Lock()
	c.m[key] = cachedIndex{uid: string(cm.UID), rv: cm.ResourceVersion, ix: ix, err: err}
	c.mu.Unlock()
	return ix, err
}

// Forget drops the memoized index of a ConfigMap that is gone.
func (c *IndexCache) Forget(namespace, name string) {
	c.mu.Lock()
	delete(c.m, types.NamespacedName{Namespace: namespace, Name: name})
	c.mu.Unlock()
}
