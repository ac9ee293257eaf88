#!/command/with-contenv bashio
# shellcheck shell=bash
# ==============================================================================
# The add-on's s6 service: turns the add-on options (config.yaml) into
# wyoming-verba's command-line flags (wyoming_verba/settings.py) and runs it.
# The Dockerfile installs this file as /etc/s6-overlay/s6-rc.d/verba/run.
# ==============================================================================

flags=(--uri 'tcp://0.0.0.0:10200' --data-dir /data)

# Passes `--flag value` when the (optional) option is set and not empty.
optional() {
    local option="$1" flag="$2"
    if bashio::config.has_value "${option}"; then
        flags+=("${flag}" "$(bashio::config "${option}")")
    fi
}

backend="$(bashio::config 'backend')"
backend="${backend// /}"
if bashio::config.has_value 'remote_uri'; then
    flags+=(--remote-uri "$(bashio::config 'remote_uri')")
    # Home Assistant OS has no GPU for add-ons: "auto" with a remote server means
    # the remote (CSM on a GPU host) first, the local voices while it is down.
    if [[ "${backend}" == 'auto' ]]; then
        backend='remote,edge,piper,espeak'
    fi
elif [[ ",${backend}," == *,remote,* ]]; then
    bashio::exit.nok "The 'remote' backend needs the 'remote_uri' option, e.g. tcp://192.168.1.20:10200."
fi
flags+=(--backend "${backend}")

optional 'voice' --voice
optional 'speaker' --speaker
flags+=(
    --language "$(bashio::config 'language')"
    --edge-voice "$(bashio::config 'edge_voice')"
    --edge-rate "$(bashio::config 'edge_rate')"
    --edge-pitch "$(bashio::config 'edge_pitch')"
    --edge-volume "$(bashio::config 'edge_volume')"
    --piper-voice "$(bashio::config 'piper_voice')"
)
optional 'piper_length_scale' --piper-length-scale
if bashio::config.false 'piper_download'; then
    flags+=(--no-piper-download)
fi
optional 'espeak_voice' --espeak-voice
optional 'remote_voice' --remote-voice
flags+=(--remote-timeout "$(bashio::config 'remote_timeout')")

if bashio::config.has_value 'csm_voices'; then
    csm_voices="$(bashio::config 'csm_voices')"
    if [[ -e "${csm_voices}" ]]; then
        flags+=(--csm-voices "${csm_voices}")
    else
        bashio::log.info "No CSM voices at ${csm_voices} (only needed for the csm backend)."
    fi
fi

flags+=(--cache-mb "$(bashio::config 'cache_mb')")
if bashio::config.true 'debug_logging'; then
    flags+=(--debug)
fi

bashio::log.info "Starting wyoming-verba (backends: ${backend})"
exec python3 -m wyoming_verba "${flags[@]}"
