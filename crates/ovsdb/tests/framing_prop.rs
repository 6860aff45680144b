//! Property tests of the stream decoder: arbitrary bytes never panic it, and any split of a
//! valid stream decodes to the same messages.

use ovsdb::framing::FrameDecoder;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Strings with the characters the scanner must get right.
        "[a-z{}\\[\\]\"\\\\ é\u{1F600}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"{}]{0,6}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn message() -> impl Strategy<Value = Value> {
    prop::collection::vec(("[a-z_]{1,8}", json_value()), 0..5)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..64,
    ) {
        let mut d = FrameDecoder::new(1024);
        'outer: for c in bytes.chunks(chunk) {
            d.buffer().extend_from_slice(c);
            loop {
                match d.next_message() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
        let _ = d.finish();
    }

    #[test]
    fn any_split_of_a_valid_stream_decodes_the_same(
        msgs in prop::collection::vec(message(), 1..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        pretty in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            if pretty {
                stream.extend(serde_json::to_vec_pretty(m).unwrap());
                stream.extend(b" \n");
            } else {
                stream.extend(serde_json::to_vec(m).unwrap());
            }
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort();
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            d.extend(&stream[w[0]..w[1]]);
            while let Some(v) = d.next_message().unwrap() {
                out.push(v);
            }
        }
        d.finish().unwrap();
        prop_assert_eq!(out, msgs);
    }
}
