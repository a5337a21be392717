//! The machinery behind the message table in `message/mod.rs`: from one row per
//! message it generates [`super::Message`], [`super::MessageKind`] with its names,
//! `Message::kind`, the record writer and readers, and the fixed-size form the
//! owned messages hold.
//!
//! A row is one of
//!
//! - `Name = compact(CODE), "name";` — a compact record without fields;
//! - `Name { field: Type, … } = compact(CODE), "name";` — a compact record whose
//!   fields are one varint each, in order (see [`super::codec::CompactField`]); a
//!   field written `field: Type = DEFAULT` may be missing at the end of a record
//!   (streams from before it existed) and then reads as `DEFAULT`;
//! - `Name { … } = custom(CODE | CODE…, codec), "name";` — a compact record laid
//!   out by the functions `codec::write(codes, fields…)` and `codec::read(codes,
//!   code, varints)` (`codes` is the row's list of codes);
//! - `Name(Type<'a>) = extended(CODE, Codec), "name";` — an extended record whose
//!   body `Codec` (see [`super::codec::ExtendedCodec`]) writes and reads.

/// Collects the rows (a token muncher: rows of different forms interleave, and the
/// generated enums keep the table's order), then generates everything at once.
macro_rules! messages {
    // A compact row without fields.
    (@rows [$($variants:tt)*] [$($kinds:tt)*] [$($compact:tt)*] [$($custom:tt)*] [$($extended:tt)*]
        $(#[$meta:meta])* $variant:ident = compact($code:literal), $name:literal;
        $($rest:tt)*
    ) => {
        $crate::message::table::messages!(@rows
            [$($variants)* $(#[$meta])* $variant,]
            [$($kinds)* ($variant $name)]
            [$($compact)* ($variant $code {})]
            [$($custom)*]
            [$($extended)*]
            $($rest)*
        );
    };
    // A compact row with one varint per field.
    (@rows [$($variants:tt)*] [$($kinds:tt)*] [$($compact:tt)*] [$($custom:tt)*] [$($extended:tt)*]
        $(#[$meta:meta])* $variant:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty $(= $default:expr)? ),* $(,)?
        } = compact($code:literal), $name:literal;
        $($rest:tt)*
    ) => {
        $crate::message::table::messages!(@rows
            [$($variants)* $(#[$meta])* $variant { $( $(#[$fmeta])* $field: $ty, )* },]
            [$($kinds)* ($variant $name)]
            [$($compact)* ($variant $code { $( $field: $ty $(= $default)? ),* })]
            [$($custom)*]
            [$($extended)*]
            $($rest)*
        );
    };
    // A compact row with a layout of its own.
    (@rows [$($variants:tt)*] [$($kinds:tt)*] [$($compact:tt)*] [$($custom:tt)*] [$($extended:tt)*]
        $(#[$meta:meta])* $variant:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        } = custom($($code:literal)|+, $codec:ident), $name:literal;
        $($rest:tt)*
    ) => {
        $crate::message::table::messages!(@rows
            [$($variants)* $(#[$meta])* $variant { $( $(#[$fmeta])* $field: $ty, )* },]
            [$($kinds)* ($variant $name)]
            [$($compact)*]
            [$($custom)* ($variant ($($code)|+) $codec { $( $field: $ty ),* })]
            [$($extended)*]
            $($rest)*
        );
    };
    // An extended row.
    (@rows [$($variants:tt)*] [$($kinds:tt)*] [$($compact:tt)*] [$($custom:tt)*] [$($extended:tt)*]
        $(#[$meta:meta])* $variant:ident ($ty:ty) = extended($code:literal, $codec:ident), $name:literal;
        $($rest:tt)*
    ) => {
        $crate::message::table::messages!(@rows
            [$($variants)* $(#[$meta])* $variant($ty),]
            [$($kinds)* ($variant $name)]
            [$($compact)*]
            [$($custom)*]
            [$($extended)* ($variant $code $codec)]
            $($rest)*
        );
    };
    // Every row read.
    (@rows
        [$($variants:tt)*]
        [$( ($kind:ident $kind_name:literal) )*]
        [$( ($cv:ident $ccode:literal { $( $cf:ident : $ct:ty $(= $cd:expr)? ),* }) )*]
        [$( ($xv:ident ($($xcode:literal)|+) $xcodec:ident { $( $xf:ident : $xt:ty ),* }) )*]
        [$( ($ev:ident $ecode:literal $ecodec:ident) )*]
    ) => {
        /// One message. Kernel → host unless marked host → kernel.
        ///
        /// The CPU a message concerns is the CPU of the stream that carries it (see
        /// [`crate::StreamId`]) unless the message names one; its timestamp is the
        /// [`crate::Event::ts`] it is decoded with.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum Message<'a> {
            $($variants)*
        }

        /// The kind of a [`Message`], without its data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum MessageKind {
            $(
                #[doc = concat!("[`Message::", stringify!($kind), "`]")]
                $kind,
            )*
        }

        impl MessageKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [MessageKind] = &[$(MessageKind::$kind,)*];

            /// The kind's position in [`MessageKind::ALL`].
            #[must_use]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// Stable snake_case name, used in summaries and golden files.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(MessageKind::$kind => $kind_name,)*
                }
            }
        }

        impl<'a> Message<'a> {
            /// The message's kind.
            #[must_use]
            pub fn kind(&self) -> MessageKind {
                match self {
                    $(Self::$kind { .. } => MessageKind::$kind,)*
                }
            }

            /// The compact form, or `None` for a message laid out as an extended
            /// record.
            #[inline]
            fn compact(&self) -> Option<Compact> {
                match *self {
                    $(Self::$cv { $($cf),* } => Some(compact($ccode, &[$(CompactField::to_varint($cf)),*])),)*
                    $(Self::$xv { $($xf),* } => Some($xcodec::write(&[$($xcode),+], $($xf),*)),)*
                    $(Self::$ev(_))|* => None,
                }
            }

            /// Appends the extended record (tag, length, timestamp delta, body).
            fn write_extended_record(&self, w: &mut Writer<'_>, ts_delta: u64) -> Result<(), EncodeError> {
                match self {
                    $(Self::$ev(m) => write_extended(w, $ecode, |w| {
                        w.varint(ts_delta)?;
                        <$ecodec as ExtendedCodec<'_, _>>::write(m, w)
                    }),)*
                    _ => Err(EncodeError::Unrepresentable),
                }
            }
        }

        /// The message of compact record `code` with fields `f` (timestamp delta
        /// excluded); `None` for a code this build does not know.
        #[inline]
        fn read_compact<'a>(code: u8, f: &[u64]) -> Result<Option<Message<'a>>, DecodeError> {
            Ok(Some(match code {
                $($ccode => {
                    need(f, 0 $(+ $crate::message::table::messages!(@required $($cd)?))*)?;
                    // Underscored: rows without fields read none.
                    let _fields = &mut f.iter().copied();
                    Message::$cv {
                        $($cf: $crate::message::table::messages!(@field _fields $($cd)?),)*
                    }
                })*
                $($($xcode)|+ => $xcodec::read(&[$($xcode),+], code, f)?,)*
                _ => return Ok(None),
            }))
        }

        /// The message of extended record `code` with body `r` (timestamp delta
        /// read); `None` for a code this build does not know.
        fn read_extended<'a>(code: u64, r: &mut Reader<'a>) -> Result<Option<Message<'a>>, DecodeError> {
            Ok(Some(match code {
                $($ecode => Message::$ev(<$ecodec as ExtendedCodec<'a, _>>::read(r)?),)*
                _ => return Ok(None),
            }))
        }

        /// A message that borrows nothing (one of a compact record), in as little
        /// room as its largest fields take.
        #[cfg(any(test, feature = "alloc"))]
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub(crate) enum FixedMessage {
            $($cv { $($cf: $ct),* },)*
            $($xv { $($xf: $xt),* },)*
        }

        #[cfg(any(test, feature = "alloc"))]
        impl FixedMessage {
            /// `m` if it borrows nothing.
            #[inline]
            pub(crate) fn of(m: &Message<'_>) -> Option<Self> {
                match *m {
                    $(Message::$cv { $($cf),* } => Some(Self::$cv { $($cf),* }),)*
                    $(Message::$xv { $($xf),* } => Some(Self::$xv { $($xf),* }),)*
                    $(Message::$ev(_))|* => None,
                }
            }

            /// The message.
            #[inline]
            pub(crate) fn message(self) -> Message<'static> {
                match self {
                    $(Self::$cv { $($cf),* } => Message::$cv { $($cf),* },)*
                    $(Self::$xv { $($xf),* } => Message::$xv { $($xf),* },)*
                }
            }
        }
    };
    // Fields a compact record must carry: those without a default.
    (@required) => { 1 };
    (@required $default:expr) => { 0 };
    // The next field of a compact record.
    (@field $f:ident) => {
        CompactField::from_varint($f.next().ok_or(DecodeError::MissingFields)?)?
    };
    (@field $f:ident $default:expr) => {
        match $f.next() {
            Some(v) => CompactField::from_varint(v)?,
            None => $default,
        }
    };
    ($($rows:tt)*) => {
        $crate::message::table::messages!(@rows [] [] [] [] [] $($rows)*);
    };
}

pub(crate) use messages;
