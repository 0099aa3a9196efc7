//! Protobuf decoding as protobuf's own runtimes do it (C++, Java, Go,
//! Python's upb): a field whose number the message declares but whose wire
//! type is not its type's (field 1 of `SearchRequest` sent as a varint) is
//! kept as an unknown field, and the message decodes; prost fails the whole
//! message instead. Such fields are skipped here (prost keeps no unknown
//! fields), in nested messages too, as the descriptor sets of the crate's
//! contracts describe them; nothing else changes, and a message without
//! such a field is decoded as it came, without a copy.
//!
//! prost has no option for this (checked: its generated `merge_field`
//! checks the wire type of every known field and fails on a mismatch).

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::{BufMut, Bytes};
use prost::encoding::{decode_varint, encode_varint};
use prost::{DecodeError, Message, Name};
use prost_types::FileDescriptorSet;
use prost_types::field_descriptor_proto::{Label, Type};

/// The wire types (0 varint, 1 64-bit, 2 length-delimited, 3 and 4 a
/// group's start and end, 5 32-bit).
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
const FIXED32: u64 = 5;

/// How deep messages nest before the rest is left to prost (its own limit).
const DEPTH_LIMIT: u32 = 100;

/// A declared field: the wire types it may come in (a bit per type), and
/// its message type when it is a message.
#[derive(Debug)]
struct Field {
    wire_types: u8,
    message: Option<String>,
}

/// Every message of the crate's contracts, by full name: its fields by number.
static MESSAGES: LazyLock<HashMap<String, HashMap<u32, Field>>> = LazyLock::new(|| {
    let mut messages = HashMap::new();
    for set in [crate::pb::v1::FILE_DESCRIPTOR_SET, crate::pb::testing::FILE_DESCRIPTOR_SET] {
        let Ok(set) = FileDescriptorSet::decode(set) else { continue };
        for file in &set.file {
            for message in &file.message_type {
                add(&mut messages, file.package(), message);
            }
        }
    }
    messages
});

fn add(messages: &mut HashMap<String, HashMap<u32, Field>>, scope: &str, message: &prost_types::DescriptorProto) {
    let name = if scope.is_empty() { message.name().to_owned() } else { format!("{scope}.{}", message.name()) };
    for nested in &message.nested_type {
        add(messages, &name, nested);
    }
    let fields = message
        .field
        .iter()
        .filter_map(|field| {
            let number = u32::try_from(field.number()).ok()?;
            let repeated = field.label() == Label::Repeated;
            let (wire_type, packable) = match field.r#type() {
                Type::Double | Type::Fixed64 | Type::Sfixed64 => (FIXED64, true),
                Type::Float | Type::Fixed32 | Type::Sfixed32 => (FIXED32, true),
                Type::Int32
                | Type::Int64
                | Type::Uint32
                | Type::Uint64
                | Type::Sint32
                | Type::Sint64
                | Type::Bool
                | Type::Enum => (VARINT, true),
                Type::String | Type::Bytes | Type::Message => (LENGTH_DELIMITED, false),
                Type::Group => (START_GROUP, false),
            };
            // A repeated number may come packed, or one by one.
            let mut wire_types = 1 << wire_type;
            if repeated && packable {
                wire_types |= 1 << LENGTH_DELIMITED;
            }
            let nested =
                (field.r#type() == Type::Message).then(|| field.type_name().trim_start_matches('.').to_owned());
            Some((number, Field { wire_types, message: nested }))
        })
        .collect();
    messages.insert(name, fields);
}

/// Decodes `bytes` as `M`, skipping the declared fields whose wire type is
/// not their type's, as protobuf's runtimes keep them as unknown.
///
/// # Errors
/// prost's [`DecodeError`] for bytes that are not a message of `M` in any
/// runtime (a cut field, a string that is not UTF-8).
pub fn decode<M: Message + Name + Default>(bytes: Bytes) -> Result<M, DecodeError> {
    match cleaned(&bytes, &M::full_name(), 0) {
        Some(cleaned) => M::decode(&cleaned[..]),
        None => M::decode(bytes),
    }
}

/// `message` (of the type named `type_name`) without its mismatched
/// fields, when it has any; `None` when it has none, or is not well formed
/// (prost then says why), or its type is not known here.
fn cleaned(message: &[u8], type_name: &str, depth: u32) -> Option<Vec<u8>> {
    let fields = MESSAGES.get(type_name)?;
    if depth >= DEPTH_LIMIT {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut rest = message;
    while !rest.is_empty() {
        let start = message.len() - rest.len();
        let key = decode_varint(&mut rest).ok()?;
        let (number, wire_type) = (u32::try_from(key >> 3).ok()?, key & 7);
        let value_start = message.len() - rest.len();
        skip(&mut rest, wire_type, number)?;
        let end = message.len() - rest.len();
        let field = fields.get(&number);
        let mismatched = field.is_some_and(|field| field.wire_types & (1 << wire_type) == 0);
        // A well-typed message field is cleaned inside.
        let inner = match field.and_then(|field| field.message.as_deref()) {
            Some(nested) if !mismatched && wire_type == LENGTH_DELIMITED => {
                let mut value = &message[value_start..end];
                let len = usize::try_from(decode_varint(&mut value).ok()?).ok()?;
                cleaned(&value[..len], nested, depth + 1)
            }
            _ => None,
        };
        if !mismatched && inner.is_none() {
            if let Some(out) = out.as_mut() {
                out.extend_from_slice(&message[start..end]);
            }
            continue;
        }
        let out = out.get_or_insert_with(|| message[..start].to_vec());
        if let Some(inner) = inner {
            encode_varint(key, out);
            encode_varint(inner.len() as u64, out);
            out.put_slice(&inner);
        }
    }
    out
}

/// Moves `rest` past one field's value of `wire_type`; `None` when it is
/// cut short or malformed.
fn skip(rest: &mut &[u8], wire_type: u64, number: u32) -> Option<()> {
    let take = |rest: &mut &[u8], n: usize| rest.get(n..).map(|after| *rest = after);
    match wire_type {
        VARINT => decode_varint(rest).ok().map(drop),
        FIXED64 => take(rest, 8),
        FIXED32 => take(rest, 4),
        LENGTH_DELIMITED => {
            let len = usize::try_from(decode_varint(rest).ok()?).ok()?;
            take(rest, len)
        }
        START_GROUP => loop {
            // Fields until this group's end.
            let key = decode_varint(rest).ok()?;
            let (inner, wire_type) = (u32::try_from(key >> 3).ok()?, key & 7);
            if wire_type == END_GROUP {
                return (inner == number).then_some(());
            }
            skip(rest, wire_type, inner)?;
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::testing::{Payload, SimpleRequest, StreamingOutputCallRequest};
    use crate::pb::v1::{ClassifyRequest, SearchRequest};

    #[test]
    fn a_known_field_of_the_wrong_wire_type_is_skipped() {
        // Field 1 (query, a string) sent as the varint 1.
        assert_eq!(decode::<SearchRequest>(Bytes::from_static(&[0x08, 0x01])), Ok(SearchRequest::default()));
        assert!(SearchRequest::decode(&[0x08, 0x01][..]).is_err(), "prost alone refuses it");
        // The rest of the message is kept, before and after it.
        let mut bytes = SearchRequest { query: "banana".into() }.encode_to_vec();
        bytes.extend_from_slice(&[0x0d, 1, 2, 3, 4]); // field 1 as 32-bit
        bytes.extend_from_slice(&[0x18, 0x05]); // field 3: unknown, skipped by prost
        assert_eq!(decode::<SearchRequest>(Bytes::from(bytes)).expect("decodes").query, "banana");
        // Repeated strings: each mismatched entry goes, the others stay.
        let bytes = [&[0x0a, 0x01, b'a'][..], &[0x08, 0x07], &[0x0a, 0x01, b'b']].concat();
        assert_eq!(decode::<ClassifyRequest>(Bytes::from(bytes)).expect("decodes").queries, ["a", "b"]);
    }

    #[test]
    fn nested_messages_are_cleaned_too() {
        // payload (3) holding body (2) sent as a varint, then response_size (2).
        let payload = [0x10, 0x2a];
        let bytes = [&[0x1a, payload.len() as u8][..], &payload, &[0x10, 0x09]].concat();
        let request = decode::<SimpleRequest>(Bytes::from(bytes)).expect("decodes");
        assert_eq!((request.payload, request.response_size), (Some(Payload::default()), 9));
        // A repeated message whose entries hold a mismatch.
        let bytes = [0x12, 0x02, 0x08, 0x05, 0x12, 0x02, 0x1a, 0x00];
        let request = decode::<StreamingOutputCallRequest>(Bytes::copy_from_slice(&bytes)).expect("decodes");
        assert_eq!(request.response_parameters.iter().map(|p| p.size).collect::<Vec<_>>(), [5, 0]);
    }

    #[test]
    fn well_formed_messages_are_not_copied_and_bad_ones_still_fail() {
        let bytes = SearchRequest { query: "kiwi".into() }.encode_to_vec();
        assert_eq!(cleaned(&bytes, "search.v1.SearchRequest", 0), None);
        // Cut short, or a string that is not UTF-8: every runtime refuses them.
        assert!(decode::<SearchRequest>(Bytes::from_static(&[0x0a, 0x05, b'a'])).is_err());
        assert!(decode::<SearchRequest>(Bytes::from_static(&[0x0a, 0x01, 0xff])).is_err());
        // A group, well closed, is skipped as unknown; one left open fails.
        assert_eq!(
            decode::<SearchRequest>(Bytes::from_static(&[0x0b, 0x08, 0x01, 0x0c])),
            Ok(SearchRequest::default())
        );
        assert!(decode::<SearchRequest>(Bytes::from_static(&[0x0b, 0x08, 0x01])).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_as_prost_would_or_better(bytes in proptest::collection::vec(0u8..=255, 0..64)) {
            let lenient = decode::<SimpleRequest>(Bytes::from(bytes.clone()));
            // What prost takes, taken the same.
            if let Ok(strict) = SimpleRequest::decode(&bytes[..]) {
                proptest::prop_assert_eq!(lenient, Ok(strict));
            }
        }
    }
}
