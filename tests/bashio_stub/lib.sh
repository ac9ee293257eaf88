# shellcheck shell=bash
# The few bashio functions the add-on's scripts use, with the real ones' behaviour:
#   BASHIO_STUB_OPTIONS    JSON file with the add-on options (the Supervisor's options.json)
#   BASHIO_STUB_PYTHON     a real Python, to read it (tests put a fake python3 on PATH)
#   BASHIO_STUB_DISCOVERY  file that bashio::discovery appends "SERVICE CONFIG" lines to

# Prints an option like the real bashio::config: "null" when unset, true/false for bools.
bashio::config() {
    "${BASHIO_STUB_PYTHON}" - "${BASHIO_STUB_OPTIONS}" "$1" <<'PY'
import json, sys
value = json.load(open(sys.argv[1])).get(sys.argv[2])
if value is None:
    print("null")
elif isinstance(value, bool):
    print("true" if value else "false")
elif isinstance(value, list):
    print("\n".join(str(v) for v in value))
else:
    print(value)
PY
}

bashio::config.has_value() {
    local value
    value="$(bashio::config "$1")"
    [[ "${value}" != "null" && -n "${value}" ]]
}

bashio::config.true() {
    [[ "$(bashio::config "$1")" == "true" ]]
}

bashio::config.false() {
    [[ "$(bashio::config "$1")" == "false" ]]
}

bashio::log.debug() { echo "[DEBUG] $*" >&2; }
bashio::log.info() { echo "[INFO] $*" >&2; }
bashio::log.warning() { echo "[WARNING] $*" >&2; }
bashio::log.error() { echo "[ERROR] $*" >&2; }
bashio::log.fatal() { echo "[FATAL] $*" >&2; }

bashio::exit.nok() {
    bashio::log.fatal "$1"
    exit 1
}

# bashio::var.json key value [key value ...] -> a JSON object of strings
bashio::var.json() {
    "${BASHIO_STUB_PYTHON}" -c \
        'import json, sys; a = sys.argv[1:]; print(json.dumps(dict(zip(a[::2], a[1::2]))))' "$@"
}

bashio::discovery() {
    echo "$1 $2" >> "${BASHIO_STUB_DISCOVERY}"
}
