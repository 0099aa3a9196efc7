// @generated
impl serde::Serialize for BoolValue {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.BoolValue", len)?;
        if true {
            struct_ser.serialize_field("value", &self.value)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for BoolValue {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "value",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            Value,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "value" => Ok(GeneratedField::Value),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = BoolValue;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.BoolValue")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<BoolValue, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut value__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::Value => {
                            if value__.is_some() {
                                return Err(serde::de::Error::duplicate_field("value"));
                            }
                            value__ = Some(map_.next_value()?);
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(BoolValue {
                    value: value__.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.BoolValue", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for EchoStatus {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.EchoStatus", len)?;
        if true {
            struct_ser.serialize_field("code", &self.code)?;
        }
        if true {
            struct_ser.serialize_field("message", &self.message)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for EchoStatus {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "code",
            "message",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            Code,
            Message,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "code" => Ok(GeneratedField::Code),
                            "message" => Ok(GeneratedField::Message),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = EchoStatus;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.EchoStatus")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<EchoStatus, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut code__ = None;
                let mut message__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::Code => {
                            if code__.is_some() {
                                return Err(serde::de::Error::duplicate_field("code"));
                            }
                            code__ = 
                                Some(map_.next_value::<::pbjson::private::NumberDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::Message => {
                            if message__.is_some() {
                                return Err(serde::de::Error::duplicate_field("message"));
                            }
                            message__ = Some(map_.next_value()?);
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(EchoStatus {
                    code: code__.unwrap_or_default(),
                    message: message__.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.EchoStatus", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for Empty {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let len = 0;
        let struct_ser = serializer.serialize_struct("grpc.testing.Empty", len)?;
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for Empty {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                            Ok(GeneratedField::__SkipField__)
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = Empty;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.Empty")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<Empty, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                while map_.next_key::<GeneratedField>()?.is_some() {
                    let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                }
                Ok(Empty {
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.Empty", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for GrpclbRouteType {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        let variant = match self {
            Self::Unknown => "GRPCLB_ROUTE_TYPE_UNKNOWN",
            Self::Fallback => "GRPCLB_ROUTE_TYPE_FALLBACK",
            Self::Backend => "GRPCLB_ROUTE_TYPE_BACKEND",
        };
        serializer.serialize_str(variant)
    }
}
impl<'de> serde::Deserialize<'de> for GrpclbRouteType {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "GRPCLB_ROUTE_TYPE_UNKNOWN",
            "GRPCLB_ROUTE_TYPE_FALLBACK",
            "GRPCLB_ROUTE_TYPE_BACKEND",
        ];

        struct GeneratedVisitor;

        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = GrpclbRouteType;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(formatter, "expected one of: {:?}", &FIELDS)
            }

            fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E>
            where
                E: serde::de::Error,
            {
                i32::try_from(v)
                    .ok()
                    .and_then(|x| x.try_into().ok())
                    .ok_or_else(|| {
                        serde::de::Error::invalid_value(serde::de::Unexpected::Signed(v), &self)
                    })
            }

            fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E>
            where
                E: serde::de::Error,
            {
                i32::try_from(v)
                    .ok()
                    .and_then(|x| x.try_into().ok())
                    .ok_or_else(|| {
                        serde::de::Error::invalid_value(serde::de::Unexpected::Unsigned(v), &self)
                    })
            }

            fn visit_str<E>(self, value: &str) -> std::result::Result<Self::Value, E>
            where
                E: serde::de::Error,
            {
                match value {
                    "GRPCLB_ROUTE_TYPE_UNKNOWN" => Ok(GrpclbRouteType::Unknown),
                    "GRPCLB_ROUTE_TYPE_FALLBACK" => Ok(GrpclbRouteType::Fallback),
                    "GRPCLB_ROUTE_TYPE_BACKEND" => Ok(GrpclbRouteType::Backend),
                    _ => Err(serde::de::Error::unknown_variant(value, FIELDS)),
                }
            }
        }
        deserializer.deserialize_any(GeneratedVisitor)
    }
}
impl serde::Serialize for Payload {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.Payload", len)?;
        if true {
            let v = PayloadType::try_from(self.r#type)
                .map_err(|_| serde::ser::Error::custom(format!("Invalid variant {}", self.r#type)))?;
            struct_ser.serialize_field("type", &v)?;
        }
        if true {
            #[allow(clippy::needless_borrow)]
            #[allow(clippy::needless_borrows_for_generic_args)]
            struct_ser.serialize_field("body", pbjson::private::base64::encode(&self.body).as_str())?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for Payload {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "type",
            "body",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            Type,
            Body,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "type" => Ok(GeneratedField::Type),
                            "body" => Ok(GeneratedField::Body),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = Payload;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.Payload")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<Payload, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut r#type__ = None;
                let mut body__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::Type => {
                            if r#type__.is_some() {
                                return Err(serde::de::Error::duplicate_field("type"));
                            }
                            r#type__ = Some(map_.next_value::<PayloadType>()? as i32);
                        }
                        GeneratedField::Body => {
                            if body__.is_some() {
                                return Err(serde::de::Error::duplicate_field("body"));
                            }
                            body__ = 
                                Some(map_.next_value::<::pbjson::private::BytesDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Payload {
                    r#type: r#type__.unwrap_or_default(),
                    body: body__.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.Payload", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for PayloadType {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        let variant = match self {
            Self::Compressable => "COMPRESSABLE",
        };
        serializer.serialize_str(variant)
    }
}
impl<'de> serde::Deserialize<'de> for PayloadType {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "COMPRESSABLE",
        ];

        struct GeneratedVisitor;

        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = PayloadType;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(formatter, "expected one of: {:?}", &FIELDS)
            }

            fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E>
            where
                E: serde::de::Error,
            {
                i32::try_from(v)
                    .ok()
                    .and_then(|x| x.try_into().ok())
                    .ok_or_else(|| {
                        serde::de::Error::invalid_value(serde::de::Unexpected::Signed(v), &self)
                    })
            }

            fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E>
            where
                E: serde::de::Error,
            {
                i32::try_from(v)
                    .ok()
                    .and_then(|x| x.try_into().ok())
                    .ok_or_else(|| {
                        serde::de::Error::invalid_value(serde::de::Unexpected::Unsigned(v), &self)
                    })
            }

            fn visit_str<E>(self, value: &str) -> std::result::Result<Self::Value, E>
            where
                E: serde::de::Error,
            {
                match value {
                    "COMPRESSABLE" => Ok(PayloadType::Compressable),
                    _ => Err(serde::de::Error::unknown_variant(value, FIELDS)),
                }
            }
        }
        deserializer.deserialize_any(GeneratedVisitor)
    }
}
impl serde::Serialize for ResponseParameters {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.ResponseParameters", len)?;
        if true {
            struct_ser.serialize_field("size", &self.size)?;
        }
        if true {
            struct_ser.serialize_field("intervalUs", &self.interval_us)?;
        }
        if let Some(v) = self.compressed.as_ref() {
            struct_ser.serialize_field("compressed", v)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for ResponseParameters {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "size",
            "interval_us",
            "intervalUs",
            "compressed",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            Size,
            IntervalUs,
            Compressed,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "size" => Ok(GeneratedField::Size),
                            "intervalUs" | "interval_us" => Ok(GeneratedField::IntervalUs),
                            "compressed" => Ok(GeneratedField::Compressed),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = ResponseParameters;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.ResponseParameters")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<ResponseParameters, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut size__ = None;
                let mut interval_us__ = None;
                let mut compressed__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::Size => {
                            if size__.is_some() {
                                return Err(serde::de::Error::duplicate_field("size"));
                            }
                            size__ = 
                                Some(map_.next_value::<::pbjson::private::NumberDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::IntervalUs => {
                            if interval_us__.is_some() {
                                return Err(serde::de::Error::duplicate_field("intervalUs"));
                            }
                            interval_us__ = 
                                Some(map_.next_value::<::pbjson::private::NumberDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::Compressed => {
                            if compressed__.is_some() {
                                return Err(serde::de::Error::duplicate_field("compressed"));
                            }
                            compressed__ = map_.next_value()?;
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(ResponseParameters {
                    size: size__.unwrap_or_default(),
                    interval_us: interval_us__.unwrap_or_default(),
                    compressed: compressed__,
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.ResponseParameters", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for SimpleRequest {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.SimpleRequest", len)?;
        if true {
            let v = PayloadType::try_from(self.response_type)
                .map_err(|_| serde::ser::Error::custom(format!("Invalid variant {}", self.response_type)))?;
            struct_ser.serialize_field("responseType", &v)?;
        }
        if true {
            struct_ser.serialize_field("responseSize", &self.response_size)?;
        }
        if let Some(v) = self.payload.as_ref() {
            struct_ser.serialize_field("payload", v)?;
        }
        if true {
            struct_ser.serialize_field("fillUsername", &self.fill_username)?;
        }
        if true {
            struct_ser.serialize_field("fillOauthScope", &self.fill_oauth_scope)?;
        }
        if let Some(v) = self.response_compressed.as_ref() {
            struct_ser.serialize_field("responseCompressed", v)?;
        }
        if let Some(v) = self.response_status.as_ref() {
            struct_ser.serialize_field("responseStatus", v)?;
        }
        if let Some(v) = self.expect_compressed.as_ref() {
            struct_ser.serialize_field("expectCompressed", v)?;
        }
        if true {
            struct_ser.serialize_field("fillServerId", &self.fill_server_id)?;
        }
        if true {
            struct_ser.serialize_field("fillGrpclbRouteType", &self.fill_grpclb_route_type)?;
        }
        if let Some(v) = self.orca_per_query_report.as_ref() {
            struct_ser.serialize_field("orcaPerQueryReport", v)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for SimpleRequest {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "response_type",
            "responseType",
            "response_size",
            "responseSize",
            "payload",
            "fill_username",
            "fillUsername",
            "fill_oauth_scope",
            "fillOauthScope",
            "response_compressed",
            "responseCompressed",
            "response_status",
            "responseStatus",
            "expect_compressed",
            "expectCompressed",
            "fill_server_id",
            "fillServerId",
            "fill_grpclb_route_type",
            "fillGrpclbRouteType",
            "orca_per_query_report",
            "orcaPerQueryReport",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            ResponseType,
            ResponseSize,
            Payload,
            FillUsername,
            FillOauthScope,
            ResponseCompressed,
            ResponseStatus,
            ExpectCompressed,
            FillServerId,
            FillGrpclbRouteType,
            OrcaPerQueryReport,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "responseType" | "response_type" => Ok(GeneratedField::ResponseType),
                            "responseSize" | "response_size" => Ok(GeneratedField::ResponseSize),
                            "payload" => Ok(GeneratedField::Payload),
                            "fillUsername" | "fill_username" => Ok(GeneratedField::FillUsername),
                            "fillOauthScope" | "fill_oauth_scope" => Ok(GeneratedField::FillOauthScope),
                            "responseCompressed" | "response_compressed" => Ok(GeneratedField::ResponseCompressed),
                            "responseStatus" | "response_status" => Ok(GeneratedField::ResponseStatus),
                            "expectCompressed" | "expect_compressed" => Ok(GeneratedField::ExpectCompressed),
                            "fillServerId" | "fill_server_id" => Ok(GeneratedField::FillServerId),
                            "fillGrpclbRouteType" | "fill_grpclb_route_type" => Ok(GeneratedField::FillGrpclbRouteType),
                            "orcaPerQueryReport" | "orca_per_query_report" => Ok(GeneratedField::OrcaPerQueryReport),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = SimpleRequest;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.SimpleRequest")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<SimpleRequest, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut response_type__ = None;
                let mut response_size__ = None;
                let mut payload__ = None;
                let mut fill_username__ = None;
                let mut fill_oauth_scope__ = None;
                let mut response_compressed__ = None;
                let mut response_status__ = None;
                let mut expect_compressed__ = None;
                let mut fill_server_id__ = None;
                let mut fill_grpclb_route_type__ = None;
                let mut orca_per_query_report__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::ResponseType => {
                            if response_type__.is_some() {
                                return Err(serde::de::Error::duplicate_field("responseType"));
                            }
                            response_type__ = Some(map_.next_value::<PayloadType>()? as i32);
                        }
                        GeneratedField::ResponseSize => {
                            if response_size__.is_some() {
                                return Err(serde::de::Error::duplicate_field("responseSize"));
                            }
                            response_size__ = 
                                Some(map_.next_value::<::pbjson::private::NumberDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::Payload => {
                            if payload__.is_some() {
                                return Err(serde::de::Error::duplicate_field("payload"));
                            }
                            payload__ = map_.next_value()?;
                        }
                        GeneratedField::FillUsername => {
                            if fill_username__.is_some() {
                                return Err(serde::de::Error::duplicate_field("fillUsername"));
                            }
                            fill_username__ = Some(map_.next_value()?);
                        }
                        GeneratedField::FillOauthScope => {
                            if fill_oauth_scope__.is_some() {
                                return Err(serde::de::Error::duplicate_field("fillOauthScope"));
                            }
                            fill_oauth_scope__ = Some(map_.next_value()?);
                        }
                        GeneratedField::ResponseCompressed => {
                            if response_compressed__.is_some() {
                                return Err(serde::de::Error::duplicate_field("responseCompressed"));
                            }
                            response_compressed__ = map_.next_value()?;
                        }
                        GeneratedField::ResponseStatus => {
                            if response_status__.is_some() {
                                return Err(serde::de::Error::duplicate_field("responseStatus"));
                            }
                            response_status__ = map_.next_value()?;
                        }
                        GeneratedField::ExpectCompressed => {
                            if expect_compressed__.is_some() {
                                return Err(serde::de::Error::duplicate_field("expectCompressed"));
                            }
                            expect_compressed__ = map_.next_value()?;
                        }
                        GeneratedField::FillServerId => {
                            if fill_server_id__.is_some() {
                                return Err(serde::de::Error::duplicate_field("fillServerId"));
                            }
                            fill_server_id__ = Some(map_.next_value()?);
                        }
                        GeneratedField::FillGrpclbRouteType => {
                            if fill_grpclb_route_type__.is_some() {
                                return Err(serde::de::Error::duplicate_field("fillGrpclbRouteType"));
                            }
                            fill_grpclb_route_type__ = Some(map_.next_value()?);
                        }
                        GeneratedField::OrcaPerQueryReport => {
                            if orca_per_query_report__.is_some() {
                                return Err(serde::de::Error::duplicate_field("orcaPerQueryReport"));
                            }
                            orca_per_query_report__ = map_.next_value()?;
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(SimpleRequest {
                    response_type: response_type__.unwrap_or_default(),
                    response_size: response_size__.unwrap_or_default(),
                    payload: payload__,
                    fill_username: fill_username__.unwrap_or_default(),
                    fill_oauth_scope: fill_oauth_scope__.unwrap_or_default(),
                    response_compressed: response_compressed__,
                    response_status: response_status__,
                    expect_compressed: expect_compressed__,
                    fill_server_id: fill_server_id__.unwrap_or_default(),
                    fill_grpclb_route_type: fill_grpclb_route_type__.unwrap_or_default(),
                    orca_per_query_report: orca_per_query_report__,
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.SimpleRequest", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for SimpleResponse {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.SimpleResponse", len)?;
        if let Some(v) = self.payload.as_ref() {
            struct_ser.serialize_field("payload", v)?;
        }
        if true {
            struct_ser.serialize_field("username", &self.username)?;
        }
        if true {
            struct_ser.serialize_field("oauthScope", &self.oauth_scope)?;
        }
        if true {
            struct_ser.serialize_field("serverId", &self.server_id)?;
        }
        if true {
            let v = GrpclbRouteType::try_from(self.grpclb_route_type)
                .map_err(|_| serde::ser::Error::custom(format!("Invalid variant {}", self.grpclb_route_type)))?;
            struct_ser.serialize_field("grpclbRouteType", &v)?;
        }
        if true {
            struct_ser.serialize_field("hostname", &self.hostname)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for SimpleResponse {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "payload",
            "username",
            "oauth_scope",
            "oauthScope",
            "server_id",
            "serverId",
            "grpclb_route_type",
            "grpclbRouteType",
            "hostname",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            Payload,
            Username,
            OauthScope,
            ServerId,
            GrpclbRouteType,
            Hostname,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "payload" => Ok(GeneratedField::Payload),
                            "username" => Ok(GeneratedField::Username),
                            "oauthScope" | "oauth_scope" => Ok(GeneratedField::OauthScope),
                            "serverId" | "server_id" => Ok(GeneratedField::ServerId),
                            "grpclbRouteType" | "grpclb_route_type" => Ok(GeneratedField::GrpclbRouteType),
                            "hostname" => Ok(GeneratedField::Hostname),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = SimpleResponse;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.SimpleResponse")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<SimpleResponse, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut payload__ = None;
                let mut username__ = None;
                let mut oauth_scope__ = None;
                let mut server_id__ = None;
                let mut grpclb_route_type__ = None;
                let mut hostname__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::Payload => {
                            if payload__.is_some() {
                                return Err(serde::de::Error::duplicate_field("payload"));
                            }
                            payload__ = map_.next_value()?;
                        }
                        GeneratedField::Username => {
                            if username__.is_some() {
                                return Err(serde::de::Error::duplicate_field("username"));
                            }
                            username__ = Some(map_.next_value()?);
                        }
                        GeneratedField::OauthScope => {
                            if oauth_scope__.is_some() {
                                return Err(serde::de::Error::duplicate_field("oauthScope"));
                            }
                            oauth_scope__ = Some(map_.next_value()?);
                        }
                        GeneratedField::ServerId => {
                            if server_id__.is_some() {
                                return Err(serde::de::Error::duplicate_field("serverId"));
                            }
                            server_id__ = Some(map_.next_value()?);
                        }
                        GeneratedField::GrpclbRouteType => {
                            if grpclb_route_type__.is_some() {
                                return Err(serde::de::Error::duplicate_field("grpclbRouteType"));
                            }
                            grpclb_route_type__ = Some(map_.next_value::<GrpclbRouteType>()? as i32);
                        }
                        GeneratedField::Hostname => {
                            if hostname__.is_some() {
                                return Err(serde::de::Error::duplicate_field("hostname"));
                            }
                            hostname__ = Some(map_.next_value()?);
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(SimpleResponse {
                    payload: payload__,
                    username: username__.unwrap_or_default(),
                    oauth_scope: oauth_scope__.unwrap_or_default(),
                    server_id: server_id__.unwrap_or_default(),
                    grpclb_route_type: grpclb_route_type__.unwrap_or_default(),
                    hostname: hostname__.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.SimpleResponse", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for StreamingInputCallRequest {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.StreamingInputCallRequest", len)?;
        if let Some(v) = self.payload.as_ref() {
            struct_ser.serialize_field("payload", v)?;
        }
        if let Some(v) = self.expect_compressed.as_ref() {
            struct_ser.serialize_field("expectCompressed", v)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for StreamingInputCallRequest {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "payload",
            "expect_compressed",
            "expectCompressed",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            Payload,
            ExpectCompressed,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "payload" => Ok(GeneratedField::Payload),
                            "expectCompressed" | "expect_compressed" => Ok(GeneratedField::ExpectCompressed),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = StreamingInputCallRequest;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.StreamingInputCallRequest")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<StreamingInputCallRequest, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut payload__ = None;
                let mut expect_compressed__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::Payload => {
                            if payload__.is_some() {
                                return Err(serde::de::Error::duplicate_field("payload"));
                            }
                            payload__ = map_.next_value()?;
                        }
                        GeneratedField::ExpectCompressed => {
                            if expect_compressed__.is_some() {
                                return Err(serde::de::Error::duplicate_field("expectCompressed"));
                            }
                            expect_compressed__ = map_.next_value()?;
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(StreamingInputCallRequest {
                    payload: payload__,
                    expect_compressed: expect_compressed__,
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.StreamingInputCallRequest", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for StreamingInputCallResponse {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.StreamingInputCallResponse", len)?;
        if true {
            struct_ser.serialize_field("aggregatedPayloadSize", &self.aggregated_payload_size)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for StreamingInputCallResponse {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "aggregated_payload_size",
            "aggregatedPayloadSize",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            AggregatedPayloadSize,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "aggregatedPayloadSize" | "aggregated_payload_size" => Ok(GeneratedField::AggregatedPayloadSize),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = StreamingInputCallResponse;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.StreamingInputCallResponse")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<StreamingInputCallResponse, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut aggregated_payload_size__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::AggregatedPayloadSize => {
                            if aggregated_payload_size__.is_some() {
                                return Err(serde::de::Error::duplicate_field("aggregatedPayloadSize"));
                            }
                            aggregated_payload_size__ = 
                                Some(map_.next_value::<::pbjson::private::NumberDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(StreamingInputCallResponse {
                    aggregated_payload_size: aggregated_payload_size__.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.StreamingInputCallResponse", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for StreamingOutputCallRequest {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.StreamingOutputCallRequest", len)?;
        if true {
            let v = PayloadType::try_from(self.response_type)
                .map_err(|_| serde::ser::Error::custom(format!("Invalid variant {}", self.response_type)))?;
            struct_ser.serialize_field("responseType", &v)?;
        }
        if true {
            struct_ser.serialize_field("responseParameters", &self.response_parameters)?;
        }
        if let Some(v) = self.payload.as_ref() {
            struct_ser.serialize_field("payload", v)?;
        }
        if let Some(v) = self.response_status.as_ref() {
            struct_ser.serialize_field("responseStatus", v)?;
        }
        if let Some(v) = self.orca_oob_report.as_ref() {
            struct_ser.serialize_field("orcaOobReport", v)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for StreamingOutputCallRequest {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "response_type",
            "responseType",
            "response_parameters",
            "responseParameters",
            "payload",
            "response_status",
            "responseStatus",
            "orca_oob_report",
            "orcaOobReport",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            ResponseType,
            ResponseParameters,
            Payload,
            ResponseStatus,
            OrcaOobReport,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "responseType" | "response_type" => Ok(GeneratedField::ResponseType),
                            "responseParameters" | "response_parameters" => Ok(GeneratedField::ResponseParameters),
                            "payload" => Ok(GeneratedField::Payload),
                            "responseStatus" | "response_status" => Ok(GeneratedField::ResponseStatus),
                            "orcaOobReport" | "orca_oob_report" => Ok(GeneratedField::OrcaOobReport),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = StreamingOutputCallRequest;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.StreamingOutputCallRequest")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<StreamingOutputCallRequest, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut response_type__ = None;
                let mut response_parameters__ = None;
                let mut payload__ = None;
                let mut response_status__ = None;
                let mut orca_oob_report__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::ResponseType => {
                            if response_type__.is_some() {
                                return Err(serde::de::Error::duplicate_field("responseType"));
                            }
                            response_type__ = Some(map_.next_value::<PayloadType>()? as i32);
                        }
                        GeneratedField::ResponseParameters => {
                            if response_parameters__.is_some() {
                                return Err(serde::de::Error::duplicate_field("responseParameters"));
                            }
                            response_parameters__ = Some(map_.next_value()?);
                        }
                        GeneratedField::Payload => {
                            if payload__.is_some() {
                                return Err(serde::de::Error::duplicate_field("payload"));
                            }
                            payload__ = map_.next_value()?;
                        }
                        GeneratedField::ResponseStatus => {
                            if response_status__.is_some() {
                                return Err(serde::de::Error::duplicate_field("responseStatus"));
                            }
                            response_status__ = map_.next_value()?;
                        }
                        GeneratedField::OrcaOobReport => {
                            if orca_oob_report__.is_some() {
                                return Err(serde::de::Error::duplicate_field("orcaOobReport"));
                            }
                            orca_oob_report__ = map_.next_value()?;
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(StreamingOutputCallRequest {
                    response_type: response_type__.unwrap_or_default(),
                    response_parameters: response_parameters__.unwrap_or_default(),
                    payload: payload__,
                    response_status: response_status__,
                    orca_oob_report: orca_oob_report__,
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.StreamingOutputCallRequest", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for StreamingOutputCallResponse {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.StreamingOutputCallResponse", len)?;
        if let Some(v) = self.payload.as_ref() {
            struct_ser.serialize_field("payload", v)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for StreamingOutputCallResponse {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "payload",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            Payload,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "payload" => Ok(GeneratedField::Payload),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = StreamingOutputCallResponse;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.StreamingOutputCallResponse")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<StreamingOutputCallResponse, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut payload__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::Payload => {
                            if payload__.is_some() {
                                return Err(serde::de::Error::duplicate_field("payload"));
                            }
                            payload__ = map_.next_value()?;
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(StreamingOutputCallResponse {
                    payload: payload__,
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.StreamingOutputCallResponse", FIELDS, GeneratedVisitor)
    }
}
impl serde::Serialize for TestOrcaReport {
    #[allow(deprecated)]
    fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        use serde::ser::SerializeStruct;
        let mut len = 0;
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        if true {
            len += 1;
        }
        let mut struct_ser = serializer.serialize_struct("grpc.testing.TestOrcaReport", len)?;
        if true {
            struct_ser.serialize_field("cpuUtilization", &self.cpu_utilization)?;
        }
        if true {
            struct_ser.serialize_field("memoryUtilization", &self.memory_utilization)?;
        }
        if true {
            struct_ser.serialize_field("requestCost", &self.request_cost)?;
        }
        if true {
            struct_ser.serialize_field("utilization", &self.utilization)?;
        }
        struct_ser.end()
    }
}
impl<'de> serde::Deserialize<'de> for TestOrcaReport {
    #[allow(deprecated)]
    fn deserialize<D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        const FIELDS: &[&str] = &[
            "cpu_utilization",
            "cpuUtilization",
            "memory_utilization",
            "memoryUtilization",
            "request_cost",
            "requestCost",
            "utilization",
        ];

        #[allow(clippy::enum_variant_names)]
        enum GeneratedField {
            CpuUtilization,
            MemoryUtilization,
            RequestCost,
            Utilization,
            __SkipField__,
        }
        impl<'de> serde::Deserialize<'de> for GeneratedField {
            fn deserialize<D>(deserializer: D) -> std::result::Result<GeneratedField, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct GeneratedVisitor;

                impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
                    type Value = GeneratedField;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(formatter, "expected one of: {:?}", &FIELDS)
                    }

                    #[allow(unused_variables)]
                    fn visit_str<E>(self, value: &str) -> std::result::Result<GeneratedField, E>
                    where
                        E: serde::de::Error,
                    {
                        match value {
                            "cpuUtilization" | "cpu_utilization" => Ok(GeneratedField::CpuUtilization),
                            "memoryUtilization" | "memory_utilization" => Ok(GeneratedField::MemoryUtilization),
                            "requestCost" | "request_cost" => Ok(GeneratedField::RequestCost),
                            "utilization" => Ok(GeneratedField::Utilization),
                            _ => Ok(GeneratedField::__SkipField__),
                        }
                    }
                }
                deserializer.deserialize_identifier(GeneratedVisitor)
            }
        }
        struct GeneratedVisitor;
        impl<'de> serde::de::Visitor<'de> for GeneratedVisitor {
            type Value = TestOrcaReport;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct grpc.testing.TestOrcaReport")
            }

            fn visit_map<V>(self, mut map_: V) -> std::result::Result<TestOrcaReport, V::Error>
                where
                    V: serde::de::MapAccess<'de>,
            {
                let mut cpu_utilization__ = None;
                let mut memory_utilization__ = None;
                let mut request_cost__ = None;
                let mut utilization__ = None;
                while let Some(k) = map_.next_key()? {
                    match k {
                        GeneratedField::CpuUtilization => {
                            if cpu_utilization__.is_some() {
                                return Err(serde::de::Error::duplicate_field("cpuUtilization"));
                            }
                            cpu_utilization__ = 
                                Some(map_.next_value::<::pbjson::private::NumberDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::MemoryUtilization => {
                            if memory_utilization__.is_some() {
                                return Err(serde::de::Error::duplicate_field("memoryUtilization"));
                            }
                            memory_utilization__ = 
                                Some(map_.next_value::<::pbjson::private::NumberDeserialize<_>>()?.0)
                            ;
                        }
                        GeneratedField::RequestCost => {
                            if request_cost__.is_some() {
                                return Err(serde::de::Error::duplicate_field("requestCost"));
                            }
                            request_cost__ = Some(
                                map_.next_value::<std::collections::HashMap<_, ::pbjson::private::NumberDeserialize<f64>>>()?
                                    .into_iter().map(|(k,v)| (k, v.0)).collect()
                            );
                        }
                        GeneratedField::Utilization => {
                            if utilization__.is_some() {
                                return Err(serde::de::Error::duplicate_field("utilization"));
                            }
                            utilization__ = Some(
                                map_.next_value::<std::collections::HashMap<_, ::pbjson::private::NumberDeserialize<f64>>>()?
                                    .into_iter().map(|(k,v)| (k, v.0)).collect()
                            );
                        }
                        GeneratedField::__SkipField__ => {
                            let _ = map_.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(TestOrcaReport {
                    cpu_utilization: cpu_utilization__.unwrap_or_default(),
                    memory_utilization: memory_utilization__.unwrap_or_default(),
                    request_cost: request_cost__.unwrap_or_default(),
                    utilization: utilization__.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_struct("grpc.testing.TestOrcaReport", FIELDS, GeneratedVisitor)
    }
}
