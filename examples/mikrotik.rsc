# MikroTik RouterOS 7: System > Scripts, a script "sshdyn", run every 5
# minutes by System > Scheduler (on-event="/system script run sshdyn").
# It reads the WAN interface's address and sends it; RouterOS's fetch
# sends the user and password by HTTP Basic auth.
:local host "home.dyn.example.com"
:local user "home-router"
:local pass "the password"
:local wan "ether1"
:local addr [/ip address get [find interface=$wan] address]
:set addr [:pick $addr 0 [:find $addr "/"]]
/tool fetch mode=https url=("https://dyn.example.com/nic/update\?hostname=" . $host . "&myip=" . $addr) user=$user password=$pass output=user as-value
# The line in sshdyn's authorized file:
#   http-user="home-router",http-password="$2a$12$…",host="home.dyn.example.com"
