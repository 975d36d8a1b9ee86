-- lua-dnsupdate-policy-script for sshdyn: the TSIG key sshdyn. may change
-- only these record types, only below the apex of these zones, only from
-- these networks; with acme = true also TXT records at _acme-challenge
-- names (ACME DNS-01 challenges), and nowhere else; with wildcards =
-- false not at wildcard names (*.HOST) either. With a policy script
-- PowerDNS checks neither allow-dnsupdate-from nor TSIG-ALLOW-DNSUPDATE:
-- this script is the policy.
local key = newDN("sshdyn.")
local zones = { ["dyn.example.com."] = true }
local types = { [pdns.A] = true, [pdns.AAAA] = true }
local acme = false
local wildcards = true
local from = newNMG()
from:addMask("127.0.0.1/32")
from:addMask("::1/128")

local function challenge(input)
  return acme and input:getQType() == pdns.TXT
    and input:getQName():toString():lower():sub(1, 16) == "_acme-challenge."
end

function updatepolicy(input)
  return input:getTsigName():toString() == key:toString()
    and zones[input:getZoneName():toString()] == true
    and input:getQName():countLabels() > input:getZoneName():countLabels()
    and (types[input:getQType()] == true or challenge(input))
    and (wildcards or input:getQName():toString():sub(1, 2) ~= "*.")
    and from:match(input:getRemote())
end
