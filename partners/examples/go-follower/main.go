// Command go-follower mirrors one subscriber's skillsync sync feed into a SQLite file.
//
// It is written from the feed's JSON Schemas (schemas/json/sync) and docs/events.md alone:
// each Kafka record is a CloudEvent in binary mode (ce_* headers, JSON data as the value, no
// value for a delete); the ce_changeversion header orders a subscriber's changes, so a repeat
// is dropped by its version; a type whose schema file is not known is refused before anything
// of it is applied. The mirror stores its own position, so a restart resumes where it stopped.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	_ "modernc.org/sqlite"
)

const schemaDDL = `
CREATE TABLE IF NOT EXISTS mirror_record (
    record_key TEXT PRIMARY KEY, kind TEXT NOT NULL, version BIGINT NOT NULL,
    payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mirror_position (
    topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL,
    version BIGINT NOT NULL, synced_at TEXT NOT NULL, PRIMARY KEY (topic, kafka_partition));`

// errUnknownContract stops the follower before a change it cannot read.
var errUnknownContract = errors.New("unknown contract")

type change struct {
	offset  int64
	version int64
	kind    string
	key     string
	value   []byte // nil for a delete
}

// contracts holds one compiled schema per feed type, named as its file is.
type contracts map[string]*jsonschema.Schema

func loadContracts(dir string) (contracts, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no schema files in %s", dir)
	}
	compiler := jsonschema.NewCompiler()
	compiler.AssertFormat()
	known := contracts{}
	for _, file := range files {
		schema, err := compiler.Compile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		stem := strings.TrimSuffix(filepath.Base(file), ".json")
		known["org.skillsync.sync."+stem] = schema
	}
	return known, nil
}

// read turns a record into a change, checked against the schema of its type.
func (c contracts) read(record *kgo.Record) (change, error) {
	attributes := map[string]any{}
	for _, h := range record.Headers {
		if name, ok := strings.CutPrefix(h.Key, "ce_"); ok {
			attributes[name] = string(h.Value)
		} else if h.Key == "content-type" {
			attributes["datacontenttype"] = string(h.Value)
		}
	}
	typeName, _ := attributes["type"].(string)
	schema, ok := c[typeName]
	where := fmt.Sprintf("offset %d (version %v)", record.Offset, attributes["changeversion"])
	if !ok {
		return change{}, fmt.Errorf("%w: %s has type %q, which this follower does not know; "+
			"nothing from this change on was applied", errUnknownContract, where, typeName)
	}
	if record.Value != nil {
		var data any
		if err := json.Unmarshal(record.Value, &data); err != nil {
			return change{}, fmt.Errorf("%w: %s: data is not JSON", errUnknownContract, where)
		}
		attributes["data"] = data
	}
	// The attributes and data together are the event's JSON form, which the schema validates.
	var event any
	raw, _ := json.Marshal(attributes)
	_ = json.Unmarshal(raw, &event)
	if err := schema.Validate(event); err != nil {
		return change{}, fmt.Errorf("%w: %s breaks %s: %v", errUnknownContract, where, typeName, err)
	}
	version, _ := strconv.ParseInt(attributes["changeversion"].(string), 10, 64)
	kind := strings.SplitN(strings.TrimPrefix(typeName, "org.skillsync.sync."), ".", 2)[0]
	return change{record.Offset, version, kind, attributes["subject"].(string), record.Value}, nil
}

type mirror struct{ db *sql.DB }

func openMirror(path string) (*mirror, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(schemaDDL); err != nil {
		return nil, err
	}
	return &mirror{db}, nil
}

// position is where the mirror resumes: (-2, 0) for a new mirror, which reads from the start.
func (m *mirror) position(topic string) (int64, int64, error) {
	var offset, version int64
	err := m.db.QueryRow(`SELECT next_offset, version FROM mirror_position
		WHERE topic = ? AND kafka_partition = 0`, topic).Scan(&offset, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return -2, 0, nil
	}
	return offset, version, err
}

// apply writes a batch and the new position in one transaction.
func (m *mirror) apply(topic string, changes []change, nextOffset, version int64) error {
	tx, err := m.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, c := range changes {
		if c.value == nil {
			_, err = tx.Exec(`DELETE FROM mirror_record WHERE record_key = ?`, c.key)
		} else {
			_, err = tx.Exec(`INSERT INTO mirror_record (record_key, kind, version, payload)
				VALUES (?, ?, ?, ?) ON CONFLICT (record_key) DO UPDATE SET kind = excluded.kind,
				version = excluded.version, payload = excluded.payload`,
				c.key, c.kind, c.version, string(c.value))
		}
		if err != nil {
			return err
		}
	}
	if _, err := tx.Exec(`INSERT INTO mirror_position VALUES (?, 0, ?, ?, ?)
		ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset,
		version = excluded.version, synced_at = excluded.synced_at`,
		topic, nextOffset, version, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}

func clientOptions(bootstrap, user, caFile string) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...)}
	if user != "" {
		mechanism := scram.Auth{User: user, Pass: os.Getenv("SKILLSYNC_PARTNER_SASL_PASSWORD")}
		opts = append(opts, kgo.SASL(mechanism.AsSha512Mechanism()))
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	}
	return opts, nil
}

func follow(ctx context.Context, subscriber, bootstrap, mirrorPath, schemaDir, user, caFile string,
	once bool) (applied, repeats int, err error) {
	known, err := loadContracts(schemaDir)
	if err != nil {
		return 0, 0, err
	}
	m, err := openMirror(mirrorPath)
	if err != nil {
		return 0, 0, err
	}
	defer m.db.Close()
	topic := "skills.sync." + subscriber
	next, version, err := m.position(topic)
	if err != nil {
		return 0, 0, err
	}
	start := kgo.NewOffset().AtStart()
	if next >= 0 {
		start = kgo.NewOffset().At(next)
	} else {
		// A new mirror reads from the start; an empty or missing feed (a subscriber with no
		// change yet) then leaves nothing to wait for.
		next = 0
	}
	opts, err := clientOptions(bootstrap, user, caFile)
	if err != nil {
		return 0, 0, err
	}
	client, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(
		map[string]map[int32]kgo.Offset{topic: {0: start}}))...)
	if err != nil {
		return 0, 0, err
	}
	defer client.Close()
	end := int64(-1)
	if once {
		ends, err := kadm.NewClient(client).ListEndOffsets(ctx, topic)
		if err != nil {
			return 0, 0, err
		}
		if o, ok := ends.Lookup(topic, 0); ok {
			end = o.Offset
		}
	}
	for !once || next < end {
		fetches := client.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			return applied, repeats, errs[0].Err
		}
		var batch []change
		nextOffset := next
		var refused error
		fetches.EachRecord(func(record *kgo.Record) {
			if refused != nil {
				return
			}
			c, err := known.read(record)
			if err != nil {
				refused = err
				return
			}
			nextOffset = record.Offset + 1
			if c.version <= version {
				repeats++
				return
			}
			version = c.version
			batch = append(batch, c)
		})
		if nextOffset > next {
			if err := m.apply(topic, batch, nextOffset, version); err != nil {
				return applied, repeats, err
			}
			applied += len(batch)
			next = nextOffset
		}
		if refused != nil {
			return applied, repeats, refused
		}
	}
	return applied, repeats, nil
}

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:19092", "Kafka bootstrap servers")
	subscriber := flag.String("subscriber", "", "the subscriber id (your partner id)")
	mirrorPath := flag.String("mirror", "", "SQLite file of the mirror")
	schemaDir := flag.String("schemas", "schemas/json/sync", "folder of the feed's JSON Schemas")
	user := flag.String("sasl-user", "", "SCRAM-SHA-512 user (password: $SKILLSYNC_PARTNER_SASL_PASSWORD)")
	caFile := flag.String("tls-ca", "", "CA certificate of the broker (enables TLS)")
	once := flag.Bool("once", false, "catch up with the feed as it is now, then exit")
	flag.Parse()
	if *subscriber == "" || *mirrorPath == "" {
		fmt.Fprintln(os.Stderr, "-subscriber and -mirror are required")
		os.Exit(2)
	}
	applied, repeats, err := follow(context.Background(), *subscriber, *bootstrap, *mirrorPath,
		*schemaDir, *user, *caFile, *once)
	if errors.Is(err, errUnknownContract) {
		fmt.Fprintf(os.Stderr, "refused: %v\n", err)
		os.Exit(3)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-follower: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d changes applied, %d repeats dropped\n", *subscriber, applied, repeats)
}
