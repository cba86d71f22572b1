# bash completion for pathwise(1): subcommands, their options (read from
# `pathwise CMD --help`, so they never drift from the program), protocol and
# plugin files (*.lua), facts (*.json) and cohorts (*.jsonl).
# Installed as share/bash-completion/completions/pathwise.

_pathwise_files() {   # _pathwise_files EXT...: files with these extensions, and directories
    local cur=$1 ext f
    shift
    local IFS=$'\n'
    for ext in "$@"; do
        for f in $(compgen -f -X "!*.$ext" -- "$cur"); do COMPREPLY+=("$f"); done
    done
    for f in $(compgen -d -- "$cur"); do COMPREPLY+=("$f/"); done
    [[ ${#COMPREPLY[@]} -gt 0 ]] && compopt -o nospace -o filenames 2>/dev/null
    return 0
}

_pathwise() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local prog=${COMP_WORDS[0]} cmds="eval facts check rules serve client batch cohort diff"
    COMPREPLY=()
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return 0
    fi
    local cmd=${COMP_WORDS[1]}
    case $prev in
        -p|--protocol|--a|--b|--plugin|--a-plugin|--b-plugin)
            _pathwise_files "$cur" lua; return 0 ;;
        --protocols) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
        -f|--format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return 0 ;;
        --from) COMPREPLY=($(compgen -W "fhir" -- "$cur")); return 0 ;;
        --adapter|--codes) _pathwise_files "$cur" lua; return 0 ;;
        --log-sync) COMPREPLY=($(compgen -W "always batch none" -- "$cur")); return 0 ;;
        --socket|--log|--summary|--html|-o|--output)
            COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return 0 ;;
        --method) COMPREPLY=($(compgen -W "evaluate check_orders health stats protocols rules reload" -- "$cur")); return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        local opts
        opts=$("$prog" "$cmd" --help 2>/dev/null | grep -oE -- '(^|[ ,])--?[a-zA-Z][a-zA-Z0-9-]*' | tr -d ' ,' | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi
    case $cmd in
        eval|facts|client) _pathwise_files "$cur" json ;;
        check)
            local w has_lua=0
            for w in "${COMP_WORDS[@]:2:COMP_CWORD-2}"; do [[ $w == *.lua ]] && has_lua=1; done
            if [[ $has_lua == 1 ]]; then _pathwise_files "$cur" jsonl; else _pathwise_files "$cur" lua; fi ;;
        batch|diff) _pathwise_files "$cur" jsonl ;;
    esac
    return 0
}
complete -F _pathwise pathwise
