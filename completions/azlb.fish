# fish completion for azlb: commands, flags, and names read from the state file.

function __azlb_names
    set -l state
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        if test "$tokens[$i]" = --state
            set state --state $tokens[(math $i + 1)]
        end
    end
    $tokens[1] $state __complete $argv 2>/dev/null
end

# The group and command typed so far (options skipped).
function __azlb_at
    set -l words
    set -l skip 0
    for t in (commandline -opc)[2..-1]
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case --state -o --output --cloud-service --vm --lbset --endpoint --name --protocol --public-port --private-port --idle-timeout '--probe-*' --when-all-down --distribution --os --image --private-ip --vip --subnet --order --action --remote-subnet --description --proxy-protocol --wait --access-log --metrics-listen --dataplane
                set skip 1
            case '-*'
            case '*'
                set words $words $t
        end
    end
    test "$words" = "$argv"
end

function __azlb_endpoint_vm
    set -l words
    for t in (commandline -opc)
        switch $t
            case '-*'
            case '*'
                set words $words $t
        end
    end
    echo $words[4]
end

complete -c azlb -f
complete -c azlb -l state -r -F -d 'State file or etcd://HOST:PORT,.../PREFIX'
complete -c azlb -s o -l output -x -a 'table json' -d 'Output format'
complete -c azlb -s q -l quiet -d 'Print nothing on success'
complete -c azlb -l dry-run -d 'Show what a change would do, write nothing'
complete -c azlb -s y -l yes -d 'Do not ask before removing'
complete -c azlb -l version -d 'Print the version'

complete -c azlb -n '__azlb_at' -a 'vm service endpoint lbset status engine state'
complete -c azlb -n '__azlb_at vm' -a 'create list show delete serve dsr-setup'
complete -c azlb -n '__azlb_at service' -a 'create list show set delete'
complete -c azlb -n '__azlb_at engine' -a 'start stop reload check withdraw announce'
complete -c azlb -n '__azlb_at state' -a 'export import history undo'
complete -c azlb -n '__azlb_at status' -l watch -d 'A live view, redrawn every SEC seconds (default 2)'
complete -c azlb -n '__azlb_at status' -l count -x -d 'With --watch: stop after N views'
complete -c azlb -n '__azlb_at lbset leave' -l public-port -x -d 'Keep its endpoint, published on this port'
complete -c azlb -n '__azlb_at lbset delete' -l remove-endpoints -d 'Remove the members\' endpoints with the set'
complete -c azlb -n '__azlb_at lbset delete' -l publish -d 'Publish each member\'s endpoint on a port of its own'
complete -c azlb -n '__azlb_at state export' -l file -r -F -d 'Write it to this file instead of stdout'
complete -c azlb -n '__azlb_at state import' -F -d 'A state file'
complete -c azlb -n '__azlb_at state import' -l replace -d 'Replace what the location holds'
complete -c azlb -n '__azlb_at engine start' -l foreground -d 'Stay attached, log to stderr'
complete -c azlb -n '__azlb_at engine start' -l threads -x -d 'Worker threads'
complete -c azlb -n '__azlb_at engine start' -l drain-timeout -x -d 'Seconds to drain on stop'
complete -c azlb -n '__azlb_at engine start' -l udp-flows -x -d 'UDP flows in all (default 8192 per worker)'
complete -c azlb -n '__azlb_at engine start' -l buffers -x -d '64 KiB buffers per worker (power of two)'
complete -c azlb -n '__azlb_at engine start' -l pipes -x -d 'Splice pipes per worker'
complete -c azlb -n '__azlb_at engine start' -l fd-reserve -x -d 'Descriptors kept for probes and the admin socket'
complete -c azlb -n '__azlb_at engine start' -l access-log -r -F -d 'JSON line per finished connection and UDP flow'
complete -c azlb -n '__azlb_at engine start' -l metrics-listen -x -d 'Serve /metrics over TCP on ADDR:PORT'
complete -c azlb -n '__azlb_at engine start' -l announce -d 'Install a host route per servable VIP, for a BGP daemon'
complete -c azlb -n '__azlb_at engine start' -l route-table -x -d 'The routing table --announce uses (default 201)'
complete -c azlb -n '__azlb_at engine start' -l handoff-address -x -d 'Where the other hosts hand this one the packets of its proxied connections'
complete -c azlb -n '__azlb_at engine withdraw' -l wait -x -d 'Return once no connections are left, or fail after SEC'
complete -c azlb -n '__azlb_at endpoint' -a 'add list show set remove acl'
complete -c azlb -n '__azlb_at endpoint acl' -a 'add list remove'
complete -c azlb -n '__azlb_at lbset' -a 'create join leave weight drain undrain list show set delete'
complete -c azlb -n '__azlb_at lbset drain' -l wait -x -d 'Return once it has no connections, or fail after SEC'

complete -c azlb -n '__azlb_at vm show; or __azlb_at vm delete; or __azlb_at vm serve; or __azlb_at vm dsr-setup; or __azlb_at endpoint add; or __azlb_at endpoint list; or __azlb_at endpoint show; or __azlb_at endpoint set; or __azlb_at endpoint remove; or __azlb_at endpoint acl add; or __azlb_at endpoint acl list; or __azlb_at endpoint acl remove' -a '(__azlb_names vms)'
complete -c azlb -n '__azlb_at service show; or __azlb_at service delete; or __azlb_at service set' -a '(__azlb_names services)'
complete -c azlb -l dataplane -x -a 'proxy nat' -d 'proxy (the engine connects) or nat (the kernel rewrites; needs CAP_NET_ADMIN)'
complete -c azlb -n '__azlb_at lbset join; or __azlb_at lbset leave; or __azlb_at lbset weight; or __azlb_at lbset drain; or __azlb_at lbset undrain; or __azlb_at lbset show; or __azlb_at lbset set; or __azlb_at lbset delete' -a '(__azlb_names lbsets)'
for c in 'endpoint show' 'endpoint set' 'endpoint remove' 'endpoint acl add' 'endpoint acl list' 'endpoint acl remove'
    complete -c azlb -n "__fish_seen_subcommand_from $c" -a '(__azlb_names endpoints (__azlb_endpoint_vm))'
end

complete -c azlb -l cloud-service -x -a '(__azlb_names services)' -d 'Cloud service'
complete -c azlb -l vm -x -a '(__azlb_names vms)' -d 'VM'
complete -c azlb -l lbset -x -a '(__azlb_names lbsets)' -d 'Load-balanced set'
complete -c azlb -l protocol -x -a 'tcp udp'
complete -c azlb -l os -x -a 'linux windows'
complete -c azlb -l probe-protocol -x -a 'tcp http'
complete -c azlb -l distribution -x -a 'five-tuple source-ip source-ip-protocol'
complete -c azlb -l when-all-down -x -a 'refuse serve-all'
complete -c azlb -l proxy-protocol -x -a 'none v1 v2' -d 'PROXY protocol header to members'
complete -c azlb -l action -x -a 'permit deny'
complete -c azlb -l no-probe -d 'Every member counts as up'
complete -c azlb -l weight -x -d 'A member\'s share of its set\'s flows, 1..256'
complete -c azlb -l direct-server-return -d 'Members answer clients directly (nat services)'
complete -c azlb -l no-direct-server-return -d 'Replies go back through the balancer'
complete -c azlb -l no-default-endpoints -d 'Skip the default endpoints'
complete -c azlb -l quick -d 'Quick Create'
complete -c azlb -l new-service -d 'The cloud service is new (its name close to another)'
complete -c azlb -l with-vms -d 'Also delete its VMs'
for o in name public-port private-port idle-timeout endpoint image private-ip vip subnet probe-port probe-path probe-interval probe-timeout order remote-subnet description
    complete -c azlb -l $o -x
end
complete -c azlb -n '__azlb_at vm dsr-setup' -l apply -d 'Do it on this host (as root) instead of printing it'
