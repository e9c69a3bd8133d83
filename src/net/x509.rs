//! The client certificate's subject, read with a short hand-written DER walk (RFC 5280, 4.1)
//! instead of a full X.509 parser: its first CN, for `use_identity_as_username`, and the
//! whole subject as OpenSSL's `X509_NAME_print_ex(.., XN_FLAG_RFC2253)` prints it, which is
//! the username Mosquitto gives a client with `use_subject_as_username`.
//!
//! That form, as OpenSSL 3.0 writes it (`crypto/x509/x_name.c`, `crypto/asn1/a_strex.c`):
//! - the attributes in reverse order (the subject's last RDN first; the attributes of a
//!   multi-valued RDN reversed too), `,` between RDNs and `+` between the attributes of one;
//! - each as `NAME=value`, NAME being OpenSSL's short name for the type (`CN`, `O`,
//!   `emailAddress`, ...; `NAMED_ARCS`). A type OpenSSL has no name for is written as its
//!   dotted OID with the value's DER in hex: `1.2.3.4=#0C03616263`;
//! - a string value converted to UTF-8 (BMPString from UCS-2, UniversalString from UCS-4,
//!   the one-byte string types as Latin-1; a UTF8String's bytes as they are), then every
//!   byte above 0x7E or below 0x20 written `\XX`, any of `,+"\<>;` preceded by a backslash,
//!   and so is a `#` or space that starts the value and a space that ends it (a value that
//!   is a single `#` is left alone, as OpenSSL leaves it);
//! - a value of another type (an OCTET STRING, a SEQUENCE, ...) as `#` and its DER in hex.
//!
//! A subject that is not well-formed DER, or a value OpenSSL would not print whole (a
//! BMPString of odd length, a character beyond Unicode), gives `None`: no username, and the
//! client is refused.

use std::fmt::Write;

/// OID 2.5.4.3 (id-at-commonName), DER-encoded contents.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The arcs under which OpenSSL 3.0 names attribute types (DER-encoded), each with the short
/// names (`objects.txt`; the long name where there is no short one) it gives the arc's
/// children `N`, as `N=name` words. Other types are printed as dotted OIDs.
const NAMED_ARCS: [(&[u8], &str); 4] = [
    // 2.5.4: X.520 attribute types.
    (
        &[0x55, 0x04],
        "3=CN 4=SN 5=serialNumber 6=C 7=L 8=ST 9=street 10=O 11=OU 12=title 13=description \
         14=searchGuide 15=businessCategory 16=postalAddress 17=postalCode 18=postOfficeBox \
         19=physicalDeliveryOfficeName 20=telephoneNumber 21=telexNumber \
         22=teletexTerminalIdentifier 23=facsimileTelephoneNumber 24=x121Address \
         25=internationaliSDNNumber 26=registeredAddress 27=destinationIndicator \
         28=preferredDeliveryMethod 29=presentationAddress 30=supportedApplicationContext \
         31=member 32=owner 33=roleOccupant 34=seeAlso 35=userPassword 36=userCertificate \
         37=cACertificate 38=authorityRevocationList 39=certificateRevocationList \
         40=crossCertificatePair 41=name 42=GN 43=initials 44=generationQualifier \
         45=x500UniqueIdentifier 46=dnQualifier 47=enhancedSearchGuide 48=protocolInformation \
         49=distinguishedName 50=uniqueMember 51=houseIdentifier 52=supportedAlgorithms \
         53=deltaRevocationList 54=dmdName 65=pseudonym 72=role 97=organizationIdentifier \
         98=c3 99=n3 100=dnsName",
    ),
    // 0.9.2342.19200300.100.1: the pilot (RFC 4519) attribute types, DC and UID among them.
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01],
        "1=UID 2=textEncodedORAddress 3=mail 4=info 5=favouriteDrink 6=roomNumber 7=photo \
         8=userClass 9=host 10=manager 11=documentIdentifier 12=documentTitle \
         13=documentVersion 14=documentAuthor 15=documentLocation 20=homeTelephoneNumber \
         21=secretary 22=otherMailbox 23=lastModifiedTime 24=lastModifiedBy 25=DC 26=aRecord \
         27=pilotAttributeType27 28=mXRecord 29=nSRecord 30=sOARecord 31=cNAMERecord \
         37=associatedDomain 38=associatedName 39=homePostalAddress 40=personalTitle \
         41=mobileTelephoneNumber 42=pagerTelephoneNumber 43=friendlyCountryName 44=uid \
         45=organizationalStatus 46=janetMailbox 47=mailPreferenceOption 48=buildingName \
         49=dSAQuality 50=singleLevelQuality 51=subtreeMinimumQuality \
         52=subtreeMaximumQuality 53=personalSignature 54=dITRedirect 55=audio \
         56=documentPublisher",
    ),
    // 1.2.840.113549.1.9: PKCS #9, emailAddress among them.
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09],
        "1=emailAddress 2=unstructuredName 3=contentType 4=messageDigest 5=signingTime \
         6=countersignature 7=challengePassword 8=unstructuredAddress \
         9=extendedCertificateAttributes 14=extReq 15=SMIME-CAPS 16=SMIME 20=friendlyName \
         21=localKeyID",
    ),
    // 1.3.6.1.4.1.311.60.2.1: the jurisdiction of an EV certificate's subject.
    (
        &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01],
        "1=jurisdictionL 2=jurisdictionST 3=jurisdictionC",
    ),
];

/// DER tags used on the walk to the subject and in its values.
mod tag {
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    pub const OID: u8 = 0x06;
    pub const VERSION: u8 = 0xa0;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const NUMERIC_STRING: u8 = 0x12;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const TELETEX_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const VISIBLE_STRING: u8 = 0x1a;
    pub const UNIVERSAL_STRING: u8 = 0x1c;
    pub const BMP_STRING: u8 = 0x1e;
}

/// One AttributeTypeAndValue of a subject.
struct Attribute<'a> {
    /// Index of the RDN (SET) it belongs to.
    rdn: usize,
    /// The type's OID, DER contents.
    oid: &'a [u8],
    /// The value's tag.
    tag: u8,
    /// The value's contents.
    value: &'a [u8],
    /// The value's whole DER element (tag, length, contents).
    der: &'a [u8],
}

/// The first CN in an X.509 certificate's subject, if it is a UTF-8-compatible string.
pub fn common_name(cert: &[u8]) -> Option<&str> {
    let first = attributes(subject(cert)?)?
        .into_iter()
        .find(|a| a.oid == OID_COMMON_NAME)?;
    match first.tag {
        tag::UTF8_STRING | tag::PRINTABLE_STRING | tag::TELETEX_STRING | tag::IA5_STRING => {
            std::str::from_utf8(first.value).ok()
        }
        _ => None,
    }
}

/// The certificate's subject as OpenSSL prints it with `XN_FLAG_RFC2253` (module doc).
pub fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    let attributes = attributes(subject(cert)?)?;
    let mut out = String::new();
    let mut previous = None;
    for a in attributes.iter().rev() {
        match previous {
            Some(rdn) if rdn == a.rdn => out.push('+'),
            Some(_) => out.push(','),
            None => {}
        }
        previous = Some(a.rdn);
        match short_name(a.oid) {
            Some(name) => {
                out.push_str(name);
                out.push('=');
                push_value(&mut out, a)?;
            }
            // OpenSSL dumps the value of a type it does not know, whatever its tag.
            None => {
                push_dotted_oid(&mut out, a.oid)?;
                out.push('=');
                push_hex(&mut out, a.der);
            }
        }
    }
    Some(out)
}

/// The contents of the subject Name of a DER certificate: Certificate → tbsCertificate →
/// (version, serialNumber, signature, issuer, validity) → subject.
fn subject(cert: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = der_next(cert).filter(|t| t.0 == tag::SEQUENCE)?;
    let (_, mut tbs, _) = der_next(certificate).filter(|t| t.0 == tag::SEQUENCE)?;
    if tbs.first() == Some(&tag::VERSION) {
        tbs = der_next(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = der_next(tbs)?.2;
    }
    let (_, name, _) = der_next(tbs).filter(|t| t.0 == tag::SEQUENCE)?;
    Some(name)
}

/// Every attribute of a Name's contents (a SEQUENCE OF SET OF AttributeTypeAndValue), in
/// order; `None` if any element is not what the structure says.
fn attributes(mut rdns: &[u8]) -> Option<Vec<Attribute<'_>>> {
    let mut out = Vec::new();
    let mut rdn = 0;
    while !rdns.is_empty() {
        let (_, mut set, rest) = der_next(rdns).filter(|t| t.0 == tag::SET)?;
        rdns = rest;
        while !set.is_empty() {
            let (_, attribute, rest) = der_next(set).filter(|t| t.0 == tag::SEQUENCE)?;
            set = rest;
            let (_, oid, value) = der_next(attribute).filter(|t| t.0 == tag::OID)?;
            let (tag, contents, after) = der_next(value)?;
            out.push(Attribute {
                rdn,
                oid,
                tag,
                value: contents,
                der: &value[..value.len() - after.len()],
            });
        }
        rdn += 1;
    }
    Some(out)
}

/// OpenSSL's name for the attribute type `oid` (DER contents), if it has one.
fn short_name(oid: &[u8]) -> Option<&'static str> {
    NAMED_ARCS.iter().find_map(|(arc, names)| {
        let &[child] = oid.strip_prefix(*arc)? else {
            return None;
        };
        names.split_whitespace().find_map(|word| {
            let (n, name) = word.split_once('=')?;
            (n.parse() == Ok(child)).then_some(name)
        })
    })
}

/// Writes a string value (module doc), or `#` and its DER in hex for other types.
fn push_value(out: &mut String, a: &Attribute<'_>) -> Option<()> {
    // (bytes per character, whether characters are converted to UTF-8): OpenSSL reads a
    // UTF8String a byte at a time without converting it.
    let (width, convert) = match a.tag {
        tag::UTF8_STRING => (1, false),
        tag::NUMERIC_STRING
        | tag::PRINTABLE_STRING
        | tag::TELETEX_STRING
        | tag::IA5_STRING
        | tag::UTC_TIME
        | tag::GENERALIZED_TIME
        | tag::VISIBLE_STRING => (1, true),
        tag::BMP_STRING => (2, true),
        tag::UNIVERSAL_STRING => (4, true),
        _ => {
            push_hex(out, a.der);
            return Some(());
        }
    };
    if !a.value.len().is_multiple_of(width) {
        return None;
    }
    let count = a.value.len() / width;
    for (i, unit) in a.value.chunks_exact(width).enumerate() {
        let code = unit.iter().fold(0u32, |c, &b| (c << 8) | u32::from(b));
        // The last character is marked as last only, so a lone `#` is not escaped.
        let last = i + 1 == count;
        let first = i == 0 && !last;
        if convert {
            let mut utf8 = [0; 4];
            for &b in char::from_u32(code)?.encode_utf8(&mut utf8).as_bytes() {
                push_escaped(out, b, first, last);
            }
        } else {
            push_escaped(out, u8::try_from(code).ok()?, first, last);
        }
    }
    Some(())
}

/// Writes one byte of a value, escaped as RFC 2253 and OpenSSL's `ESC_CTRL`/`ESC_MSB` ask.
fn push_escaped(out: &mut String, b: u8, first: bool, last: bool) {
    match b {
        b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
            out.push('\\');
            out.push(char::from(b));
        }
        b'#' if first => out.push_str("\\#"),
        b' ' if first || last => out.push_str("\\ "),
        0x20..=0x7e => out.push(char::from(b)),
        _ => {
            let _ = write!(out, "\\{b:02X}");
        }
    }
}

/// Writes `#` and `bytes` in upper-case hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    out.push('#');
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
}

/// Writes an OID's DER contents in dotted form (`1.2.3.4`); `None` if malformed or an arc
/// does not fit 64 bits.
fn push_dotted_oid(out: &mut String, oid: &[u8]) -> Option<()> {
    let mut arcs = Vec::new();
    let mut arc: u64 = 0;
    for &b in oid {
        arc = arc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(arc);
            arc = 0;
        }
    }
    if oid.last().is_none_or(|b| b & 0x80 != 0) {
        return None;
    }
    // The first subidentifier holds the first two arcs: 40 * first + second.
    let (&head, tail) = arcs.split_first()?;
    let (first, second) = match head {
        n @ 0..40 => (0, n),
        n @ 40..80 => (1, n - 40),
        n => (2, n - 80),
    };
    let _ = write!(out, "{first}.{second}");
    for arc in tail {
        let _ = write!(out, ".{arc}");
    }
    Some(())
}

/// One DER element: `(tag, contents, rest)`; `None` if truncated or not definite-length.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            let bytes = rest.get(..count)?;
            let len = bytes
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            (len, &rest[count..])
        }
        _ => return None,
    };
    let contents = rest.get(..len)?;
    Some((tag, contents, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER element with a definite length (short or long form).
    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    fn attribute(oid: &[u8], value_tag: u8, value: &[u8]) -> Vec<u8> {
        der(
            tag::SET,
            &der(
                tag::SEQUENCE,
                &[der(tag::OID, oid), der(value_tag, value)].concat(),
            ),
        )
    }

    /// A certificate skeleton: only the fields the walk looks at are meaningful.
    fn certificate(subject: &[u8], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(der(tag::VERSION, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &[0x01, 0x23])); // serialNumber
        tbs.extend(der(tag::SEQUENCE, &der(tag::OID, &[0x2a, 0x86, 0x48]))); // signature
        tbs.extend(der(
            tag::SEQUENCE,
            &attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"ca"),
        ));
        tbs.extend(der(
            tag::SEQUENCE,
            &[der(0x17, b"250101"), der(0x17, b"350101")].concat(),
        ));
        tbs.extend(der(tag::SEQUENCE, subject));
        tbs.extend(der(tag::SEQUENCE, &[0; 200])); // subjectPublicKeyInfo: long form length
        let body = [
            der(tag::SEQUENCE, &tbs),
            der(tag::SEQUENCE, &[]),
            der(0x03, &[0]),
        ]
        .concat();
        der(tag::SEQUENCE, &body)
    }

    #[test]
    fn common_name_is_read_from_the_subject_not_the_issuer() {
        let subject = [
            attribute(&[0x55, 0x04, 0x06], tag::PRINTABLE_STRING, b"NZ"),
            attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"sensor-7"),
            attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"second"),
        ]
        .concat();
        assert_eq!(common_name(&certificate(&subject, true)), Some("sensor-7"));
        assert_eq!(common_name(&certificate(&subject, false)), Some("sensor-7"));
        let printable = attribute(OID_COMMON_NAME, tag::PRINTABLE_STRING, b"plc");
        assert_eq!(common_name(&certificate(&printable, true)), Some("plc"));
    }

    #[test]
    fn no_common_name_or_unsupported_string_gives_none() {
        let country = attribute(&[0x55, 0x04, 0x06], tag::PRINTABLE_STRING, b"NZ");
        assert_eq!(common_name(&certificate(&country, true)), None);
        let bmp = attribute(OID_COMMON_NAME, 0x1e, &[0, b'a']);
        assert_eq!(common_name(&certificate(&bmp, true)), None);
        assert_eq!(common_name(&certificate(&[], true)), None);
    }

    #[test]
    fn truncated_or_garbage_der_gives_none() {
        let subject = attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"sensor-7");
        let cert = certificate(&subject, true);
        for len in 0..cert.len() {
            assert_eq!(common_name(&cert[..len]), None, "truncated to {len}");
        }
        assert_eq!(
            common_name(&[0x30, 0x80, 0x00, 0x00]),
            None,
            "indefinite length"
        );
        assert_eq!(
            common_name(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            None,
            "length too long"
        );
    }

    #[test]
    fn der_lengths_short_and_long_form() {
        assert_eq!(
            der_next(&[0x04, 0x02, 1, 2, 9]),
            Some((0x04, &[1, 2][..], &[9][..]))
        );
        let long = der(0x04, &[7; 300]);
        let (tag, contents, rest) = der_next(&long).unwrap();
        assert_eq!((tag, contents.len(), rest.len()), (0x04, 300, 0));
        assert_eq!(der_next(&[0x04, 0x03, 1]), None);
    }

    /// Decodes a hex fixture.
    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Subjects made with Python's `cryptography` (DER below) and printed by OpenSSL 3.0.19,
    /// `openssl x509 -noout -subject -nameopt RFC2253`: what Mosquitto 2.0.11 makes the
    /// username with `use_subject_as_username`.
    const OPENSSL_RFC2253: [(&str, &str); 7] = [
        (
            "3035310b3009060355040613024e5a31133011060355040a0c0a506970697420546573743111300f\
             06035504030c0873656e736f722d37",
            "CN=sensor-7,O=Pipit Test,C=NZ",
        ),
        (
            "3038311a3018060355040a0c11612c622b6322645c653c663e673b683d69311a301806035504030c\
             1120236c65616420616e6420747261696c20",
            r#"CN=\ #lead and trail\ ,O=a\,b\+c\"d\\e\<f\>g\;h=i"#,
        ),
        (
            "3025310a300806035504030c0123310b3009060355040b0c027823310a300806035504070c0120",
            r"L=\ ,OU=x#,CN=#",
        ),
        (
            "30283112301006035504070c09c58c746175746168693112301006035504030c0974616209686572\
             657f",
            r"CN=tab\09here\7F,L=\C5\8Ctautahi",
        ),
        (
            "3081853113301106035504031e0a0062006d0070002000e9310f300d060355040a14067436312\
             0c3a93119301706035504071c10000000750000006e00000069000000763115301306092a864886\
             f70d01090116067840792e6e7a31173015060a0992268993f22c64011916076578616d706c653112\
             3010060a0992268993f22c6401010c027531",
            r"UID=u1,DC=example,emailAddress=x@y.nz,L=univ,O=t61 \C3\83\C2\A9,CN=bmp \C3\A9",
        ),
        (
            "303d3115300806035504030c016130090603550405130234323124300a060355040b0c034f707330\
             0a060355040c0c03456e67300a060355042a0c03416e6e",
            "GN=Ann+title=Eng+OU=Ops,serialNumber=42+CN=a",
        ),
        (
            "3050310f300d06032a03040c06637573746f6d310a300806038837010c017a310a30080603550403\
             0c016331133011060b2b0601040182373c02010313024e5a3110300e06035504610c075641544e5a\
             2d31",
            "organizationIdentifier=VATNZ-1,jurisdictionC=NZ,CN=c,2.999.1=#0C017A,\
             1.2.3.4=#0C06637573746F6D",
        ),
    ];

    #[test]
    fn subject_is_printed_as_openssl_prints_it_with_rfc2253() {
        for (name, expected) in OPENSSL_RFC2253 {
            let name = hex(&name.split_whitespace().collect::<String>());
            let (_, contents, _) = der_next(&name).unwrap();
            let cert = certificate(contents, true);
            assert_eq!(subject_rfc2253(&cert).as_deref(), Some(expected));
        }
    }

    #[test]
    fn a_subject_openssl_would_not_print_whole_gives_none() {
        let odd_bmp = attribute(OID_COMMON_NAME, tag::BMP_STRING, &[0, b'a', 0]);
        assert_eq!(subject_rfc2253(&certificate(&odd_bmp, true)), None);
        let beyond_unicode = attribute(OID_COMMON_NAME, tag::UNIVERSAL_STRING, &[0, 0x11, 0, 0]);
        assert_eq!(subject_rfc2253(&certificate(&beyond_unicode, true)), None);
        let bad_oid = attribute(&[0x2a, 0x83], tag::UTF8_STRING, b"x");
        assert_eq!(subject_rfc2253(&certificate(&bad_oid, true)), None);
        let subject = attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"sensor-7");
        let cert = certificate(&subject, true);
        for len in 0..cert.len() {
            assert_eq!(subject_rfc2253(&cert[..len]), None, "truncated to {len}");
        }
        assert_eq!(
            subject_rfc2253(&certificate(&[], true)).as_deref(),
            Some("")
        );
    }

    #[test]
    fn a_value_of_another_type_is_dumped_in_hex() {
        let octets = attribute(OID_COMMON_NAME, 0x04, &[0xde, 0xad]);
        let cert = certificate(&octets, true);
        assert_eq!(subject_rfc2253(&cert).as_deref(), Some("CN=#0402DEAD"));
    }
}
