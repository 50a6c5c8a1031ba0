package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Real server hosts (RealServerHost, issue 28): the records of what each resource prepared on the host the helper
// runs on. They sit beside the stack files, in one file (a host has a few of them, and counting an address or a
// sysctl across stacks needs them all), read and replaced under the same lock, judged the same way.

// HostsFileVersion is the hosts file's format version.
const HostsFileVersion = 1

// HostRecord is one RealServerHost resource's record: what it declared and what it changed, with the values it
// found, so that its delete puts back exactly what it changed and nothing another record still needs.
type HostRecord struct {
	Owner      string    `json:"owner"`
	Holder     string    `json:"holder"`
	Forwarding string    `json:"forwarding"`
	VIPs       []HostVIP `json:"vips"`
	// Sysctls are the sysctls it manages: the value it sets and the one found before any record set it.
	Sysctls map[string]HostSysctl `json:"sysctls"`
	// Device is the decapsulation device of tunnel forwarding (tunl0), nil for dr.
	Device *HostDevice `json:"device,omitempty"`
}

// HostDevice is a tunnel device a record uses: Module is the module pulumi-ipvs loaded for it ("" when it found the
// device there), WasDown that it found the device down; the last record using it puts both back.
type HostDevice struct {
	Name    string `json:"name"`
	Module  string `json:"module,omitempty"`
	WasDown bool   `json:"wasDown,omitempty"`
}

// HostVIP is a virtual address on an interface; Added: pulumi-ipvs put it there (else it was found there).
type HostVIP struct {
	Address   string `json:"address"`
	Interface string `json:"interface"`
	Added     bool   `json:"added"`
}

// HostSysctl is a managed sysctl's value and the value it had before any record set it (as JSON values).
type HostSysctl struct {
	Set      json.RawMessage `json:"set"`
	Original json.RawMessage `json:"original"`
}

type hostsFile struct {
	V     int          `json:"v"`
	Hosts []HostRecord `json:"hosts"`
}

func hostsPath() string { return filepath.Join(Dir, "hosts.json") }

// LoadHosts reads the hosts' records (none when the file is absent). Without the lock it sees the last complete
// file: the file is only ever replaced by rename.
func LoadHosts() ([]HostRecord, error) {
	if err := judgeDirs(Dir, false, 0); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	raw, _, err := readTrusted(hostsPath())
	if err != nil {
		if _, serr := os.Lstat(hostsPath()); errors.Is(serr, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var f hostsFile
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("the ledger file %s is not a valid hosts record: %v", hostsPath(), err)
	}
	if f.V != HostsFileVersion {
		return nil, fmt.Errorf("the ledger file %s is version %d (this helper reads version %d)", hostsPath(), f.V, HostsFileVersion)
	}
	return f.Hosts, nil
}

// SaveHosts replaces the hosts' records (the file goes with the last one); the ledger must be open (locked).
func (l *Ledger) SaveHosts(recs []HostRecord) error {
	if l.lockFile == nil {
		return errors.New("the hosts records are saved only under the ledger's lock")
	}
	if len(recs) == 0 {
		if err := os.Remove(hostsPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s failed: %v", hostsPath(), err)
		}
		return nil
	}
	if err := judgeDirs(Dir, true, 0o755); err != nil {
		return err
	}
	sorted := append([]HostRecord(nil), recs...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Owner != sorted[j].Owner {
			return sorted[i].Owner < sorted[j].Owner
		}
		return sorted[i].Holder < sorted[j].Holder
	})
	b, err := json.Marshal(hostsFile{V: HostsFileVersion, Hosts: sorted})
	if err != nil {
		return err
	}
	return writeAtomic(hostsPath(), append(b, '\n'), 0o600)
}
