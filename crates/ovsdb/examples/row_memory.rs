//! Heap bytes per row: 30,000 pod-like `Logical_Switch_Port` rows, built in memory (as the
//! desired state builds them), parsed from their JSON form (as monitor updates bring them), and
//! held in a [`Replica`] with its indexes (by name, by owner, and the node switches' `ports`
//! references; the switches' own bytes are counted in too). The figures include the 24-byte
//! slot of each row in the vector or hash table that holds it.
//!
//! `cargo run -p ovsdb --example row_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use std::sync::Arc;

use ovsdb::replica::Replica;
use ovsdb::schema::DatabaseSchema;
use ovsdb::{Datum, Row, Uuid};

/// Counts live heap bytes: as requested, and as glibc's malloc spends them (8 bytes of header,
/// 16-byte granules, 32 bytes at least), which is what the process's RSS follows.
struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static FOOTPRINT: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

fn footprint(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        REQUESTED.fetch_add(layout.size() as isize, Relaxed);
        FOOTPRINT.fetch_add(footprint(layout.size()), Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size() as isize, Relaxed);
        FOOTPRINT.fetch_sub(footprint(layout.size()), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROWS: usize = 30_000;
const NODES: usize = 100;
const OWNER: &str = "k8s.ovn.org/owner";

const SCHEMA: &str = r#"{"name":"OVN_Northbound","version":"7.3.0","tables":{
  "Logical_Switch":{"columns":{"name":{"type":"string"},
    "ports":{"type":{"key":{"type":"uuid","refTable":"Logical_Switch_Port"},
      "min":0,"max":"unlimited"}}},"isRoot":true},
  "Logical_Switch_Port":{"columns":{"name":{"type":"string"},"type":{"type":"string"},
    "addresses":{"type":{"key":"string","min":0,"max":"unlimited"}},
    "port_security":{"type":{"key":"string","min":0,"max":"unlimited"}},
    "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
    "options":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}}}}"#;

fn pod_port(i: usize) -> Row {
    let (hi, lo) = (i / 256 % 256, i % 256);
    let addresses = format!("0a:58:0a:80:{hi:02x}:{lo:02x} 10.128.{hi}.{lo}");
    let namespace = format!("ns-{}", i % 100);
    [
        ("name", Datum::scalar(format!("{namespace}_pod-{i}"))),
        ("addresses", Datum::set([addresses.clone()])),
        ("port_security", Datum::set([addresses])),
        (
            "external_ids",
            Datum::map([
                ("namespace", namespace.clone()),
                ("pod", "true".to_owned()),
                (OWNER, format!("{namespace}/pod-{i}")),
            ]),
        ),
        (
            "options",
            Datum::map([
                ("requested-chassis", format!("node-{}", i % NODES)),
                (
                    "iface-id-ver",
                    format!("{i:08x}-1111-2222-3333-444455556666"),
                ),
            ]),
        ),
        ("type", Datum::scalar("")),
    ]
    .into_iter()
    .map(|(column, value)| (column.to_owned(), value))
    .collect()
}

/// The live (requested bytes, malloc footprint, blocks).
fn live() -> [isize; 3] {
    [
        REQUESTED.load(Relaxed),
        FOOTPRINT.load(Relaxed),
        BLOCKS.load(Relaxed),
    ]
}

/// What `build` leaves allocated, per row.
fn per_row<T>(build: impl FnOnce() -> T) -> [isize; 3] {
    let before = live();
    let held = build();
    let after = live();
    drop(held);
    [0, 1, 2].map(|i| (after[i] - before[i]) / ROWS as isize)
}

/// The rows in a replica, each node's switch holding its ports.
fn replica(schema: &Arc<DatabaseSchema>, texts: &[String]) -> Replica {
    let mut replica = Replica::new(schema.clone(), vec![OWNER.to_owned()]);
    let mut ports = vec![Vec::new(); NODES];
    for (i, text) in texts.iter().enumerate() {
        let uuid = Uuid::new_v4();
        let row = serde_json::from_str(text).expect("row parses");
        replica.put("Logical_Switch_Port", uuid, row);
        ports[i % NODES].push(uuid);
    }
    for (node, ports) in ports.into_iter().enumerate() {
        let row: Row = [
            ("name".to_owned(), Datum::scalar(format!("node-{node}"))),
            ("ports".to_owned(), Datum::set(ports)),
        ]
        .into_iter()
        .collect();
        replica.put("Logical_Switch", Uuid::new_v4(), row);
    }
    replica
}

fn main() {
    let texts: Vec<String> = (0..ROWS)
        .map(|i| ovsdb::datum::row_to_json(&pod_port(i)).to_string())
        .collect();
    let schema = Arc::new(DatabaseSchema::from_json_str(SCHEMA).expect("schema parses"));
    let report = |how: &str, [requested, footprint, blocks]: [isize; 3]| {
        println!("{how}: {requested} B requested, {footprint} B malloc footprint, {blocks} allocations per row");
    };
    let parse = |text: &String| serde_json::from_str(text).expect("row parses");
    report(
        "built  ",
        per_row(|| (0..ROWS).map(pod_port).collect::<Vec<Row>>()),
    );
    report(
        "parsed ",
        per_row(|| texts.iter().map(parse).collect::<Vec<Row>>()),
    );
    report("replica", per_row(|| replica(&schema, &texts)));
}
