# bash completion for azlb: commands, flags, and the names of cloud services,
# VMs, endpoints and sets read from the state file (through `azlb __complete`).

_azlb_names() {
  local -a state=()
  [[ -n $_azlb_state ]] && state=(--state "$_azlb_state")
  "${COMP_WORDS[0]}" "${state[@]}" __complete "$@" 2>/dev/null
}

_azlb_flags() {
  case "$1" in
    "vm create") echo "--cloud-service --quick --os --image --private-ip --endpoint --no-default-endpoints --new-service" ;;
    "service create") echo "--vip --subnet --dataplane" ;;
    "service set") echo "--dataplane --vip" ;;
    "service delete") echo "--with-vms" ;;
    "endpoint add") echo "--name --protocol --public-port --private-port --idle-timeout --lbset --weight $_azlb_probe" ;;
    "acl add") echo "--order --action --remote-subnet --description" ;;
    "acl remove") echo "--order" ;;
    "lbset create") echo "--vm --endpoint --protocol --public-port --private-port --weight $_azlb_probe" ;;
    "lbset join") echo "--vm --endpoint --private-port --weight" ;;
    "lbset weight") echo "--vm --weight" ;;
    "lbset leave") echo "--vm --public-port" ;;
    "lbset undrain") echo "--vm" ;;
    "lbset drain") echo "--vm --wait" ;;
    "lbset set") echo "--cloud-service $_azlb_probe" ;;
    "lbset show") echo "--cloud-service" ;;
    "lbset delete") echo "--cloud-service --publish --remove-endpoints" ;;
    "endpoint set") echo "--public-port --private-port --idle-timeout" ;;
    "status") echo "--cloud-service --watch --count" ;;
    "state export") echo "--file" ;;
    "state import") echo "--replace" ;;
    "engine start") echo "--foreground --threads --drain-timeout --udp-flows --buffers --pipes --fd-reserve --access-log --metrics-listen --announce --route-table --handoff-address" ;;
    "engine withdraw") echo "--wait" ;;
    "vm dsr-setup") echo "--apply" ;;
  esac
}

_azlb() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local _azlb_probe="--probe-protocol --probe-port --probe-path --probe-interval --probe-timeout --no-probe --when-all-down --distribution --proxy-protocol --direct-server-return --no-direct-server-return"
  local _azlb_state="" group="" cmd="" vm="" i w
  local -a args=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --state) _azlb_state=${COMP_WORDS[i + 1]}; ((i++)); continue ;;
      --vm) vm=${COMP_WORDS[i + 1]}; ((i++)); continue ;;
      -o | --output | --cloud-service | --lbset | --endpoint | --name | --protocol | --public-port | \
        --private-port | --idle-timeout | --probe-* | --when-all-down | --distribution | --os | --image | \
        --private-ip | --vip | --subnet | --order | --action | --remote-subnet | --description | --threads | --drain-timeout | --udp-flows | --buffers | --pipes | --fd-reserve | \
        --proxy-protocol | --wait | --access-log | --metrics-listen | --dataplane | --file | --count | --weight | --route-table | --handoff-address)
        ((i++)); continue ;;
      -*) continue ;;
    esac
    if [[ -z $group ]]; then group=$w
    elif [[ -z $cmd ]]; then cmd=$w
    else args+=("$w"); fi
  done
  # endpoint acl SUB ...: the acl command sits one level deeper.
  if [[ $group == endpoint && $cmd == acl ]]; then
    group=acl cmd=${args[0]} args=("${args[@]:1}")
  fi

  local words=""
  case $prev in
    --state) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -o | --output) words="table json" ;;
    --cloud-service) words=$(_azlb_names services) ;;
    --vm) words=$(_azlb_names vms) ;;
    --lbset) words=$(_azlb_names lbsets) ;;
    --endpoint) [[ -n $vm && $group == lbset ]] && words=$(_azlb_names endpoints "$vm") ;;
    --protocol) words="tcp udp" ;;
    --probe-protocol) words="tcp http" ;;
    --os) words="linux windows" ;;
    --distribution) words="five-tuple source-ip source-ip-protocol" ;;
    --when-all-down) words="refuse serve-all" ;;
    --proxy-protocol) words="none v1 v2" ;;
    --dataplane) words="proxy nat" ;;
    --access-log | --file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --action) words="permit deny" ;;
    --name | --public-port | --private-port | --idle-timeout | --probe-port | --probe-path | --probe-interval | \
      --probe-timeout | --image | --private-ip | --vip | --subnet | --order | --remote-subnet | --description | --threads | --drain-timeout | --udp-flows | --buffers | --pipes | --fd-reserve | --metrics-listen | --wait | --watch | --count | --weight | --route-table | --handoff-address) return ;;
    *)
      if [[ $cur == -* ]]; then
        words="$(_azlb_flags "$group $cmd") $(_azlb_flags "$group") --help"
        [[ -z $group ]] && words="--state --output --quiet --dry-run --yes --help --version"
      elif [[ -z $group ]]; then
        words="vm service endpoint lbset status engine state"
      elif [[ -z $cmd ]]; then
        case $group in
          vm) words="create list show delete serve dsr-setup" ;;
          service) words="create list show set delete" ;;
          engine) words="start stop reload check withdraw announce" ;;
          state) words="export import history undo" ;;
          endpoint) words="add list show set remove acl" ;;
          lbset) words="create join leave weight drain undrain list show set delete" ;;
          acl) words="add list remove" ;;
        esac
      else
        case "$group $cmd ${#args[@]}" in
          "vm show 0" | "vm delete 0" | "vm serve 0" | "vm dsr-setup 0" | "endpoint add 0" | "endpoint list 0" | "endpoint show 0" | \
            "endpoint set 0" | "endpoint remove 0" | "acl add 0" | "acl list 0" | "acl remove 0") words=$(_azlb_names vms) ;;
          "service show 0" | "service delete 0" | "service set 0") words=$(_azlb_names services) ;;
          "endpoint show 1" | "endpoint set 1" | "endpoint remove 1" | "acl add 1" | "acl list 1" | "acl remove 1")
            words=$(_azlb_names endpoints "${args[0]}") ;;
          "lbset "*" 0") [[ $cmd != create && $cmd != list ]] && words=$(_azlb_names lbsets) ;;
          "state import 0") COMPREPLY=($(compgen -f -- "$cur")); return ;;
        esac
      fi
      ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _azlb azlb
