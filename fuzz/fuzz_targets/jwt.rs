#![no_main]
search_fuzz::target!(jwt);
