#![no_main]
search_fuzz::target!(grpc_timeout);
