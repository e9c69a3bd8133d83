//! WebSocket framing (RFC 6455 section 5): `FrameReader` turns a client's frames into the
//! bytes of their data payloads, in place, and answers control frames; `header` writes the
//! header of one of our frames.
//!
//! The reader holds no buffer of its own: it decodes the bytes just read where they lie (a
//! frame's payload is never longer than the bytes that carried it, so the data moves only
//! towards the front), keeping across reads only a partial header (at most 14 bytes), the
//! masking key and how much of the current frame is left. Text and binary frames are both
//! MQTT bytes, as Mosquitto takes them; a message may be fragmented, and a frame may hold
//! any part of an MQTT packet, or several. The payload of a control frame (at most 125
//! bytes) is collected in the caller's `control` buffer until it is whole.

/// Continuation of a fragmented message.
const CONTINUATION: u8 = 0x0;
/// A text frame.
const TEXT: u8 = 0x1;
/// A binary frame.
pub const BINARY: u8 = 0x2;
/// A close frame.
pub const CLOSE: u8 = 0x8;
/// A ping frame.
const PING: u8 = 0x9;
/// A pong frame.
const PONG: u8 = 0xa;

/// The FIN bit of a frame's first byte: the last frame of its message.
const FIN: u8 = 0x80;
/// RSV1-3: meaningful only with an extension, and none is negotiated.
const RSV: u8 = 0x70;
/// The MASK bit of a frame's second byte.
const MASKED: u8 = 0x80;
/// Longest control frame payload [RFC 6455 5.5].
const MAX_CONTROL: u64 = 125;

/// Close status 1000: normal closure.
pub const NORMAL: u16 = 1000;

/// A frame that breaks RFC 6455, or one larger than the bound: the connection is closed with
/// the status code `code()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A client frame without a masking key [RFC 6455 5.1].
    Unmasked,
    /// RSV bits set, with no extension negotiated [RFC 6455 5.2].
    Reserved,
    /// An opcode RFC 6455 does not define.
    Opcode,
    /// A continuation with no message open, or a new message before the last one ended.
    Continuation,
    /// A control frame fragmented or longer than 125 bytes [RFC 6455 5.5].
    Control,
    /// A close frame whose payload is one byte [RFC 6455 5.5.1].
    CloseBody,
    /// A data frame longer than the listener's bound.
    TooLarge,
}

impl FrameError {
    /// The close status sent: 1009 (message too big) for the bound, 1002 (protocol error)
    /// for the rest.
    pub fn code(self) -> u16 {
        match self {
            FrameError::TooLarge => 1009,
            _ => 1002,
        }
    }

    /// What was wrong, for the log.
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::Unmasked => "unmasked WebSocket frame",
            FrameError::Reserved => "WebSocket frame with RSV bits set",
            FrameError::Opcode => "unknown WebSocket opcode",
            FrameError::Continuation => "WebSocket continuation out of place",
            FrameError::Control => "fragmented or long WebSocket control frame",
            FrameError::CloseBody => "WebSocket close frame of one byte",
            FrameError::TooLarge => "WebSocket frame larger than max_packet_size",
        }
    }
}

/// Decoding state of a client's frames across reads.
#[derive(Debug)]
pub struct FrameReader {
    /// The header being read: 2 to 14 bytes.
    head: [u8; 14],
    head_len: u8,
    /// Payload bytes of the current frame not yet read; 0 while a header is read.
    left: u64,
    mask: [u8; 4],
    /// Payload bytes of the current frame read so far, modulo 4 (the masking key's offset).
    offset: u8,
    /// The current frame's opcode and FIN bit.
    opcode: u8,
    fin: bool,
    /// A data message has started and not ended.
    in_message: bool,
    /// A close frame has arrived: nothing after it is read.
    closed: bool,
    /// Largest data frame payload accepted.
    max_frame: u64,
}

impl FrameReader {
    /// A reader accepting data frames of up to `max_frame` payload bytes.
    pub fn new(max_frame: u64) -> FrameReader {
        FrameReader {
            head: [0; 14],
            head_len: 0,
            left: 0,
            mask: [0; 4],
            offset: 0,
            opcode: 0,
            fin: false,
            in_message: false,
            closed: false,
            max_frame,
        }
    }

    /// Whether the client's close frame has arrived.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Decodes `buf` (bytes just read) in place: returns how many data payload bytes now
    /// lie at its front. A ping's pong and the reply to a close frame are appended to
    /// `replies`; a control frame's payload gathers in `control`. Bytes after a close frame
    /// are ignored.
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        control: &mut Vec<u8>,
        replies: &mut Vec<u8>,
    ) -> Result<usize, FrameError> {
        let (mut i, mut o) = (0, 0);
        while i < buf.len() && !self.closed {
            if self.left == 0 {
                self.head[usize::from(self.head_len)] = buf[i];
                self.head_len += 1;
                i += 1;
                if self.header()? {
                    self.head_len = 0;
                    if self.left == 0 {
                        self.end_frame(control, replies)?;
                    }
                }
                continue;
            }
            let n = (buf.len() - i).min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let offset = usize::from(self.offset);
            if self.opcode & 0x8 == 0 {
                for k in 0..n {
                    buf[o + k] = buf[i + k] ^ self.mask[(offset + k) & 3];
                }
                o += n;
            } else {
                let payload = &buf[i..i + n];
                control.extend(
                    payload
                        .iter()
                        .enumerate()
                        .map(|(k, b)| b ^ self.mask[(offset + k) & 3]),
                );
            }
            i += n;
            self.left -= n as u64;
            self.offset = ((offset + n) & 3) as u8;
            if self.left == 0 {
                self.end_frame(control, replies)?;
            }
        }
        Ok(o)
    }

    /// Checks the header read so far; `true` once it is whole (the frame is then set up).
    fn header(&mut self) -> Result<bool, FrameError> {
        let head = &self.head[..usize::from(self.head_len)];
        let [b0, b1, ..] = *head else {
            return Ok(false);
        };
        let opcode = b0 & 0x0f;
        if b0 & RSV != 0 {
            return Err(FrameError::Reserved);
        }
        // [RFC 6455 5.1] a server must close on an unmasked client frame.
        if b1 & MASKED == 0 {
            return Err(FrameError::Unmasked);
        }
        let short = b1 & 0x7f;
        match opcode {
            CONTINUATION if !self.in_message => return Err(FrameError::Continuation),
            TEXT | BINARY if self.in_message => return Err(FrameError::Continuation),
            CONTINUATION | TEXT | BINARY => {}
            CLOSE | PING | PONG if b0 & FIN == 0 || u64::from(short) > MAX_CONTROL => {
                return Err(FrameError::Control);
            }
            CLOSE | PING | PONG => {}
            _ => return Err(FrameError::Opcode),
        }
        let extended = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        // The length is checked as soon as it is known, before the masking key.
        let Some(length) = head.get(2..2 + extended) else {
            return Ok(false);
        };
        let len = match extended {
            0 => u64::from(short),
            _ => length
                .iter()
                .fold(0u64, |len, &b| (len << 8) | u64::from(b)),
        };
        if len > self.max_frame {
            return Err(FrameError::TooLarge);
        }
        if head.len() < 2 + extended + 4 {
            return Ok(false);
        }
        self.mask.copy_from_slice(&head[2 + extended..6 + extended]);
        self.offset = 0;
        self.left = len;
        self.opcode = opcode;
        self.fin = b0 & FIN != 0;
        Ok(true)
    }

    /// The current frame's payload is all read.
    fn end_frame(
        &mut self,
        control: &mut Vec<u8>,
        replies: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        match self.opcode {
            CONTINUATION | TEXT | BINARY => self.in_message = !self.fin,
            // [RFC 6455 5.5.2] a pong carries the ping's payload. Pongs wait for a client
            // that may not read: past MAX_REPLIES bytes of them, further pings go unanswered
            // (5.5.3 allows answering only the latest), so they cannot grow without bound.
            PING if replies.len() < MAX_REPLIES => control_frame(PONG, control, replies),
            PING => {}
            CLOSE => {
                // [RFC 6455 5.5.1] the reply echoes the status code, if there was one.
                if control.len() == 1 {
                    return Err(FrameError::CloseBody);
                }
                control.truncate(2);
                control_frame(CLOSE, control, replies);
                self.closed = true;
            }
            _ => {}
        }
        // A control payload is rare: its buffer is not kept.
        *control = Vec::new();
        Ok(())
    }
}

/// Appends an unmasked control frame carrying `payload` (at most 125 bytes) to `out`.
/// Most bytes of control replies (pongs) waiting to be written to one client.
const MAX_REPLIES: usize = 4096;

fn control_frame(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    let mut head = [0; 10];
    let n = header(opcode, payload.len() as u64, &mut head);
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(payload);
}

/// Appends a close frame with status `code` to `out`.
pub fn close_frame(code: u16, out: &mut Vec<u8>) {
    control_frame(CLOSE, &code.to_be_bytes(), out);
}

/// Writes the header of an unmasked, final frame of `len` payload bytes into `out`, in the
/// shortest length form [RFC 6455 5.2]; returns its length (2, 4 or 10).
pub fn header(opcode: u8, len: u64, out: &mut [u8; 10]) -> usize {
    out[0] = FIN | opcode;
    match len {
        0..=125 => {
            out[1] = len as u8;
            2
        }
        126..=0xffff => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&len.to_be_bytes());
            10
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut head = [0; 10];
        let n = header(0, payload.len() as u64, &mut head);
        let mut out = head[..n].to_vec();
        out[0] = first;
        out[1] |= MASKED;
        out.extend(KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        out
    }

    /// What decoding `input` in reads of the given sizes yields: data, replies, or the error.
    fn run(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Vec<u8>, bool), FrameError> {
        let mut reader = FrameReader::new(1000);
        let (mut data, mut control, mut replies) = (Vec::new(), Vec::new(), Vec::new());
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            let mut chunk = input[start..end].to_vec();
            let n = reader.decode(&mut chunk, &mut control, &mut replies)?;
            data.extend_from_slice(&chunk[..n]);
            start = end;
        }
        Ok((data, replies, reader.closed()))
    }

    /// Decodes `input` whole and split at every byte boundary (one and two cuts), and checks
    /// every split gives the same result.
    fn every_split(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>, bool), FrameError> {
        let whole = run(input, &[]);
        for a in 0..=input.len() {
            assert_eq!(run(input, &[a]), whole, "cut at {a}");
            for b in a..=input.len() {
                assert_eq!(run(input, &[a, b]), whole, "cuts at {a}, {b}");
            }
        }
        whole
    }

    const CONNECT: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";

    #[test]
    fn a_binary_frame_yields_its_payload() {
        let (data, replies, closed) = every_split(&masked(0x82, CONNECT)).unwrap();
        assert_eq!(data, CONNECT);
        assert!(replies.is_empty() && !closed);
    }

    #[test]
    fn packets_may_span_frames_and_frames_may_hold_several_packets() {
        let two = [CONNECT, b"\xc0\x00"].concat();
        let input = [
            masked(0x02, &two[..3]),
            masked(0x80, &two[3..9]),
            masked(0x82, &two[9..]),
            masked(0x82, &two),
        ]
        .concat();
        let (data, ..) = every_split(&input).unwrap();
        assert_eq!(data, [&two[..], &two[..]].concat());
    }

    #[test]
    fn text_frames_are_mqtt_bytes_too_as_mosquitto_takes_them() {
        let (data, ..) = every_split(&masked(0x81, CONNECT)).unwrap();
        assert_eq!(data, CONNECT);
    }

    #[test]
    fn ping_is_answered_with_pong_even_inside_a_fragmented_message() {
        let input = [
            masked(0x02, &CONNECT[..4]),
            masked(0x89, b"hi"),
            masked(0x80, &CONNECT[4..]),
        ]
        .concat();
        let (data, replies, _) = every_split(&input).unwrap();
        assert_eq!(data, CONNECT);
        assert_eq!(replies, b"\x8a\x02hi");
    }

    #[test]
    fn close_is_echoed_with_its_code_and_ends_reading() {
        let input = [
            masked(0x82, b"ab"),
            masked(0x88, b"\x03\xe8bye"),
            masked(0x82, b"cd"),
        ]
        .concat();
        assert_eq!(
            every_split(&input).unwrap(),
            (b"ab".to_vec(), b"\x88\x02\x03\xe8".to_vec(), true)
        );
        let (_, replies, closed) = every_split(&masked(0x88, b"")).unwrap();
        assert_eq!((replies, closed), (b"\x88\x00".to_vec(), true));
        assert_eq!(
            every_split(&masked(0x88, b"\x03")),
            Err(FrameError::CloseBody)
        );
    }

    #[test]
    fn extended_lengths_are_read() {
        let long = vec![7u8; 300];
        let (data, ..) = run(&masked(0x82, &long), &[3, 5, 100]).unwrap();
        assert_eq!(data, long);
        let mut huge = masked(0x82, &[]);
        huge[1] = MASKED | 127;
        huge.splice(2..2, 1001u64.to_be_bytes());
        assert_eq!(every_split(&huge), Err(FrameError::TooLarge));
        // Refused before the masking key arrives.
        assert_eq!(run(&huge[..10], &[]), Err(FrameError::TooLarge));
        let mut at_bound = masked(0x82, &[0; 1000]);
        at_bound.truncate(8);
        assert_eq!(run(&at_bound, &[]).map(|r| r.0.len()), Ok(0));
    }

    #[test]
    fn broken_frames_are_refused_at_every_split() {
        let mut unmasked = masked(0x82, CONNECT);
        unmasked[1] &= !MASKED;
        let cases: [(Vec<u8>, FrameError); 7] = [
            (unmasked, FrameError::Unmasked),
            (masked(0xc2, b"x"), FrameError::Reserved),
            (masked(0x83, b"x"), FrameError::Opcode),
            (masked(0x80, b"x"), FrameError::Continuation),
            (
                [masked(0x02, b"x"), masked(0x82, b"y")].concat(),
                FrameError::Continuation,
            ),
            (masked(0x09, b"x"), FrameError::Control),
            (masked(0x89, &[0; 126]), FrameError::Control),
        ];
        for (input, error) in cases {
            assert_eq!(every_split(&input), Err(error), "{input:02x?}");
        }
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        let mut out = [0; 10];
        assert_eq!(header(BINARY, 125, &mut out), 2);
        assert_eq!(out[..2], [0x82, 125]);
        assert_eq!(header(BINARY, 126, &mut out), 4);
        assert_eq!(out[..4], [0x82, 126, 0, 126]);
        assert_eq!(header(BINARY, 65536, &mut out), 10);
        assert_eq!(out[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        let mut close = Vec::new();
        close_frame(1002, &mut close);
        assert_eq!(close, [0x88, 2, 0x03, 0xea]);
    }

    #[test]
    fn pings_from_a_client_that_never_reads_are_answered_up_to_a_bound() {
        let ping = masked(0x89, b"0123456789");
        let flood: Vec<u8> = std::iter::repeat_n(ping, 10_000).flatten().collect();
        let (data, replies, closed) = run(&flood, &[]).unwrap();
        assert!(data.is_empty() && !closed);
        assert!(!replies.is_empty(), "pings are answered");
        assert!(
            replies.len() < MAX_REPLIES + 16,
            "{} bytes of pongs",
            replies.len()
        );
    }
}
