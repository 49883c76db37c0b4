// Package firewall turns provider ranges and profile settings into host
// firewall rules (UFW, nftables) and the FreeSWITCH ACL. The acl.conf that
// xml-curl serves and `fsplane firewall export --format acl` come from the
// same function, ACLConfig.
package firewall
