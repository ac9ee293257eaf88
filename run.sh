#!/command/with-contenv bashio
# shellcheck shell=bash
# ==============================================================================
# The add-on's s6 service: turns the add-on options (config.yaml) into
# wyoming-verba's command-line flags (wyoming_verba/settings.py) and runs it.
# The Dockerfile installs this file as /etc/s6-overlay/s6-rc.d/verba/run.
# ==============================================================================

# Wyoming on 10200; the page and the OpenAI-compatible API on the ingress port.
flags=(--uri 'tcp://0.0.0.0:10200' --data-dir /data --http-port 8099 --http-host 0.0.0.0)

# Values go as --flag=VALUE: argparse takes a separate value that starts with "-"
# (an Edge pitch of -20Hz) for another flag.
value() {
    flags+=("$2=$(bashio::config "$1")")
}

# The same, only when the optional option is set and not empty.
optional() {
    if bashio::config.has_value "$1"; then
        value "$1" "$2"
    fi
}

# "auto" with a remote server puts the remote (CSM on a GPU host) before the local
# voices: Home Assistant OS gives add-ons no GPU, so there is no local CSM. Whether the
# options fit together (the remote backend needs remote_uri) is the server's check:
# it exits with a message that names the option.
backend="$(bashio::config 'backend')"
backend="${backend// /}"
optional 'remote_uri' --remote-uri
flags+=("--backend=${backend}")

optional 'voice' --voice
optional 'speaker' --speaker
value 'language' --language
value 'edge_voice' --edge-voice
value 'edge_rate' --edge-rate
value 'edge_pitch' --edge-pitch
value 'edge_volume' --edge-volume
value 'piper_voice' --piper-voice
optional 'piper_length_scale' --piper-length-scale
if bashio::config.false 'piper_download'; then
    flags+=(--no-piper-download)
fi
optional 'espeak_voice' --espeak-voice
optional 'remote_voice' --remote-voice
value 'remote_timeout' --remote-timeout

if bashio::config.has_value 'csm_voices'; then
    csm_voices="$(bashio::config 'csm_voices')"
    if [[ -e "${csm_voices}" ]]; then
        flags+=("--csm-voices=${csm_voices}")
    else
        bashio::log.info "No CSM voices at ${csm_voices} (only needed for the csm backend)."
    fi
fi

if bashio::config.has_value 'lexicon'; then
    lexicon="$(bashio::config 'lexicon')"
    if [[ -e "${lexicon}" ]]; then
        flags+=("--lexicon=${lexicon}")
    else
        bashio::log.info "No pronunciation lexicon at ${lexicon}."
    fi
fi

value 'cache_mb' --cache-mb
optional 'http_api_key' --http-api-key
if bashio::config.true 'debug_logging'; then
    flags+=(--debug)
fi

bashio::log.info "Starting wyoming-verba (backends: ${backend})"
exec python3 -m wyoming_verba "${flags[@]}"
