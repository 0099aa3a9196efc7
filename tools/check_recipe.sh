#!/usr/bin/env bash
# Follows docs/adding-an-rpc.md in a scratch copy of the repository, so that
# the recipe cannot drift from the code: adds a unary method `Ping` to the
# contract as step 1 says, regenerates (step 2), writes its handler and its
# JSON view (step 3), its path and its client method (step 4), and a test of
# it (step 6), then runs the library's tests of it: Ping answers through the
# client, and every method of the contract, Ping included, answers on the
# real server over gRPC and Connect JSON, none UNIMPLEMENTED. The command
# line (step 5) is left out: its matches are the compiler's to point at.
#
# Needs what tools/install.sh installs (buf, the protoc plugins, web/'s npm
# packages). Builds into $CARGO_TARGET_DIR (default: this repository's
# target/), so only the crate itself compiles again.
#
#     bash tools/check_recipe.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
if [[ ! -d $repo/web/node_modules ]]; then
  echo "check_recipe: web/node_modules is missing: run bash tools/install.sh first" >&2
  exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
say() { printf '\n==> check_recipe: %s\n' "$*"; }

say "a scratch copy of the repository in $scratch"
# What git tracks or would track, as it is in the working tree.
git -C "$repo" ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' file; do [[ -e $repo/$file ]] && printf '%s\0' "$file"; done |
  tar -C "$repo" --null -T - -cf - | tar -C "$scratch" -xf -
[[ -e $scratch/web/node_modules ]] || ln -s "$repo/web/node_modules" "$scratch/web/node_modules"
cd "$scratch"

# Inserts TEXT into FILE after the first line matching PATTERN (a Python
# regular expression), or fails saying the recipe's anchor is gone.
insert_after() {
  python3 - "$1" "$2" "$3" <<'EOF'
import re, sys
path, pattern, text = sys.argv[1:]
lines = open(path).read().split("\n")
for i, line in enumerate(lines):
    if re.search(pattern, line):
        lines[i + 1:i + 1] = text.split("\n")
        open(path, "w").write("\n".join(lines))
        sys.exit(0)
sys.exit(f"check_recipe: no line matching {pattern!r} in {path}: update docs/adding-an-rpc.md and this script")
EOF
}

say "step 1: the method and its messages in the proto"
insert_after proto/search/v1/search.proto '^  rpc Scan\(' '
  // Ping answers with the text it was sent.
  rpc Ping(PingRequest) returns (PingResponse) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }'
cat >>proto/search/v1/search.proto <<'EOF'

// PingRequest is one text to send back.
message PingRequest {
  // Any text.
  string text = 1;
}

// PingResponse carries the text of its PingRequest.
message PingResponse {
  // The request's text, as it was.
  string text = 1;
}
EOF
buf format -w
buf lint
# Against the repository's own commit: an added method breaks nothing.
git_dir=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir)
buf breaking --against "$git_dir#ref=$(git -C "$repo" rev-parse HEAD)"

say "step 2: buf generate, and the page's bundle"
buf generate
grep -q 'async fn ping' gen/search/v1/search.v1.tonic.rs
npm run build --prefix web --silent

say "step 3: the handler (handlers.rs) and the JSON view (codec.rs)"
insert_after src/server/calls/handlers.rs '^impl SearchService for Search \{' '    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse { text: request.into_inner().text }))
    }
'
insert_after src/server/calls/handlers.rs '^use crate::pb::v1::search_service_server::SearchService;' 'use crate::pb::v1::{PingRequest, PingResponse};'
insert_after src/server/protocols/connect/codec.rs '^        "search.v1.SearchResponse" =>' '        "search.v1.PingRequest" => (from_json::<v1::PingRequest>, to_json::<v1::PingRequest>),
        "search.v1.PingResponse" => (from_json::<v1::PingResponse>, to_json::<v1::PingResponse>),'
insert_after src/server/protocols/connect/codec.rs '^use crate::pb::testing as interop;' 'use crate::pb::v1;'

say "step 4: the path (rpc.rs) and the client's method, as Client::search is written"
insert_after src/rpc.rs '^pub const SCAN_PATH' '/// See [`CLASSIFY_PATH`].
pub const PING_PATH: &str = "/search.v1.SearchService/Ping";'
python3 - <<'EOF'
import re, sys
from pathlib import Path
# The file of `impl Client` that holds the unary `search` method.
signature = re.compile(r"^    pub async fn search\(&self, request: SearchRequest\) -> Result<SearchResponse, Error> \{$", re.M)
found = [p for p in Path("src/client").rglob("*.rs") if signature.search(p.read_text())]
if len(found) != 1:
    sys.exit(f"check_recipe: Client::search not found once in src/client/ ({found}): update docs/adding-an-rpc.md and this script")
path = found[0]
text = path.read_text()
start = signature.search(text).start()
end, depth = text.index("{", start), 0
for at in range(end, len(text)):
    depth += {"{": 1, "}": -1}.get(text[at], 0)
    if depth == 0:
        end = at + 1
        break
body = text[start:end]
ping = (body.replace("pub async fn search(", "pub async fn ping(")
        .replace("SearchRequest", "crate::pb::v1::PingRequest")
        .replace("SearchResponse", "crate::pb::v1::PingResponse")
        .replace("SEARCH_PATH", "crate::rpc::PING_PATH")
        .replace(".search(request)", ".ping(request)"))
if ping.count("ping") < 2:
    sys.exit(f"check_recipe: Client::search no longer calls the generated client's search: update the recipe")
path.write_text(text[:end] + "\n\n    /// Unary `Ping`: the text back.\n    ///\n    /// # Errors\n    /// See [`Error`].\n" + ping + text[end:])
print(f"Client::ping written in {path}")
EOF

say "step 6: a test of Ping through the client"
cat >>src/server/calls/handlers.rs <<'EOF'

#[cfg(test)]
mod recipe_tests {
    use crate::client::{Client, Target};
    use crate::pb::v1::PingRequest;
    use crate::server::{Listeners, ServerConfig, start};

    #[tokio::test]
    async fn ping_answers_through_the_client() {
        let listeners = Listeners::bind("127.0.0.1:0").await.expect("bind");
        let target: Target = listeners.display_addr().expect("address").parse().expect("a target");
        let (serving, _handle) = start(listeners, ServerConfig::default(), std::future::pending()).await.expect("start");
        let server = tokio::spawn(serving);
        let client = Client::connect(&target).await.expect("a client");
        let answer = client.ping(PingRequest { text: "banana".into() }).await.expect("an answer");
        assert_eq!(answer.text, "banana");
        server.abort();
    }
}
EOF

say "build, and the tests of the method (cargo test --lib)"
cargo fmt --all
cargo test --locked --lib -- \
  recipe_tests every_method_of_the_contract_answers_on_the_real_server every_message_of_the_contract_has_a_json_view \
  2>&1 | tee "$scratch/test.log"
grep -q 'every_method_of_the_contract_answers_on_the_real_server ... ok' "$scratch/test.log"
grep -q 'ping_answers_through_the_client ... ok' "$scratch/test.log"
say "the recipe holds: Ping added as docs/adding-an-rpc.md says is served and called"
