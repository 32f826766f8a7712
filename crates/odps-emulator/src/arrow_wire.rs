//! Arrow IPC as the Tunnel carries it: encapsulated record-batch messages
//! only, no schema message and no end-of-stream marker (the schema is the
//! session's table schema).

use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;

use crate::error::OdpsError;

/// End-of-stream marker of the IPC stream format.
const END_OF_STREAM: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

fn bad(message: String) -> OdpsError {
    OdpsError::new(
        400,
        "MalformedDataStream",
        format!("ODPS-0420061: Malformed arrow data - {message}"),
    )
}

/// The schema message alone, to put in front of a Tunnel payload.
fn schema_message(schema: &SchemaRef) -> Result<Vec<u8>, OdpsError> {
    let writer = StreamWriter::try_new(Vec::new(), schema)
        .map_err(|e| OdpsError::internal(e.to_string()))?;
    Ok(writer.get_ref().clone())
}

/// Decodes record-batch messages against the session's schema.
pub fn decode(payload: &[u8], schema: &SchemaRef) -> Result<Vec<RecordBatch>, OdpsError> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    let mut stream = schema_message(schema)?;
    stream.extend_from_slice(payload);
    stream.extend_from_slice(&END_OF_STREAM);
    let reader =
        StreamReader::try_new(Cursor::new(stream), None).map_err(|e| bad(e.to_string()))?;
    reader.map(|b| b.map_err(|e| bad(e.to_string()))).collect()
}

/// Encodes batches as record-batch messages only.
pub fn encode(batches: &[RecordBatch], schema: &SchemaRef) -> Result<Vec<u8>, OdpsError> {
    let internal = |e: arrow_schema::ArrowError| OdpsError::internal(e.to_string());
    let mut writer = StreamWriter::try_new(Vec::new(), schema).map_err(internal)?;
    let schema_len = writer.get_ref().len();
    for batch in batches {
        writer.write(batch).map_err(internal)?;
    }
    writer.finish().map_err(internal)?;
    let stream = writer.into_inner().map_err(internal)?;
    let end = stream.len().saturating_sub(END_OF_STREAM.len());
    Ok(stream[schema_len..end].to_vec())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn batches_round_trip_without_schema_message() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec!["a", "b"])),
            ],
        )
        .unwrap();
        let payload = encode(&[batch.clone(), batch.clone()], &schema).unwrap();
        assert_eq!(&payload[..4], &[0xFF; 4]);
        assert_eq!(
            decode(&payload, &schema).unwrap(),
            vec![batch.clone(), batch]
        );
    }
}
