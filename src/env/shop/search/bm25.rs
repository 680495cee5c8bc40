//! BM25 as Lucene 8's `BM25Similarity` computes it (the Lucene under Pyserini 0.17, which
//! WebShop pins), in the same single-precision steps, so that ties and near-ties fall as they
//! fall in WebShop:
//!
//! ```text
//! score(term, doc) = boost · idf · tf / (tf + k1 · (1 − b + b · dl / avgdl))
//! idf              = ln(1 + (N − n + 0.5) / (n + 0.5))
//! ```
//!
//! with N the documents that have a term, n those that have this one, `boost` how many times the
//! query names the term, `dl` the document's length in terms stored lossily in one byte
//! (`SmallFloat.intToByte4`), and `avgdl` the exact mean length. Lucene 8 dropped the classic
//! `(k1 + 1)` factor; a document's score is the sum over the query's terms.

/// Pyserini's defaults, which WebShop keeps.
pub const K1: f32 = 0.9;
pub const B: f32 = 0.4;

/// Lengths below this are stored exactly (`SmallFloat.NUM_FREE_VALUES`: 255 minus the code of
/// `i32::MAX`).
const FREE_VALUES: u32 = 255 - long_to_int4(i32::MAX as u64);

/// `SmallFloat.longToInt4`: a float with a 3-bit mantissa and an implicit leading one.
const fn long_to_int4(i: u64) -> u32 {
    let bits = 64 - i.leading_zeros();
    if bits < 4 {
        i as u32
    } else {
        let shift = bits - 4;
        ((i >> shift) as u32 & 0x07) | ((shift + 1) << 3)
    }
}

fn int4_to_long(i: u32) -> u64 {
    let bits = (i & 0x07) as u64;
    match (i >> 3) as i32 - 1 {
        -1 => bits,
        shift => (bits | 0x08) << shift,
    }
}

/// `SmallFloat.intToByte4`: a document length as its norm byte.
pub fn encode_length(len: u32) -> u8 {
    if len < FREE_VALUES {
        len as u8
    } else {
        (FREE_VALUES + long_to_int4((len - FREE_VALUES) as u64)) as u8
    }
}

/// `SmallFloat.byte4ToInt`: the length a norm byte stands for (at most the true length).
pub fn decode_length(byte: u8) -> u32 {
    let i = byte as u32;
    if i < FREE_VALUES {
        i
    } else {
        (FREE_VALUES as u64 + int4_to_long(i - FREE_VALUES)) as u32
    }
}

/// `BM25Similarity.idf`, computed in double and kept in single precision.
pub fn idf(doc_freq: u64, doc_count: u64) -> f32 {
    (1.0 + (doc_count as f64 - doc_freq as f64 + 0.5) / (doc_freq as f64 + 0.5)).ln() as f32
}

/// `sumTotalTermFreq / docCount`, kept in single precision.
pub fn average_length(total_terms: u64, doc_count: u64) -> f32 {
    if doc_count == 0 {
        1.0
    } else {
        (total_terms as f64 / doc_count as f64) as f32
    }
}

/// The query-independent part of a term's score in a document: `tf / (tf + k1 · (1 − b + b ·
/// dl / avgdl))`, with Lucene's per-norm cache in single precision and the ratio in double.
pub fn tf_part(tf: u32, norm: u8, avgdl: f32) -> f32 {
    let cache = K1 * ((1.0 - B) + B * decode_length(norm) as f32 / avgdl);
    let tf = tf as f32 as f64;
    (tf / (tf + cache as f64)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lengths_are_exact_and_long_ones_round_down() {
        assert_eq!(FREE_VALUES, 24);
        for len in 0..40 {
            assert_eq!(decode_length(encode_length(len)), len, "{len}");
        }
        // Four significant bits above 24: 41 shares 40's byte, 47 shares 46's; 48 has its own.
        assert_eq!(decode_length(encode_length(41)), 40);
        assert_eq!(decode_length(encode_length(47)), 46);
        assert_eq!(decode_length(encode_length(48)), 48);
        assert_eq!(decode_length(encode_length(1000)), 984);
        assert_eq!(encode_length(u32::MAX >> 1), 255);
        let mut last = 0;
        for byte in 0..=255u8 {
            let len = decode_length(byte);
            assert!(len >= last, "lengths grow with their byte");
            assert_eq!(encode_length(len), byte);
            last = len;
        }
    }

    #[test]
    fn idf_is_lucenes() {
        // ln(1 + (3 - 1 + 0.5) / 1.5) = ln(8/3)
        assert!((idf(1, 3) - (8.0f64 / 3.0).ln() as f32).abs() < 1e-7);
        assert!(
            idf(3, 3) > 0.0,
            "a term in every document still counts a little"
        );
    }
}
