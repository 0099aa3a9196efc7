#![no_main]
search_fuzz::target!(connect_json);
