package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/config"
	"github.com/fsplane/fsplane/xmlcurl"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.freeswitchConfigCmd() })
}

const defaultESLAddr = "127.0.0.1:8021"

func (a *app) freeswitchConfigCmd() *cobra.Command {
	var only, node string
	cmd := &cobra.Command{
		Use:   "freeswitch-config",
		Short: "Print the xml_curl.conf.xml and event_socket.conf.xml that connect FreeSWITCH to fsplane",
		Long: `Print the two files an operator drops into FreeSWITCH's autoload_configs:

  xml_curl.conf.xml      binds directory and configuration lookups to
                         ` + "$" + config.EnvPublicURL + xmlcurl.Path + `, with the HTTP Basic
                         credentials ` + config.EnvXMLCurlUser + ` / ` + config.EnvXMLCurlPassword + `
                         and a ` + fmt.Sprint(xmlcurl.BindingTimeout) + ` s timeout
  event_socket.conf.xml  the event socket fsplane connects to (--esl, ` + config.EnvESLPassword + `)

mod_xml_curl must be loaded before mod_sofia (modules.conf.xml), or sofia
reads its static sofia.conf and never asks fsplane for profiles and gateways.

With --only the one file is printed bare, for redirecting into place.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains([]string{"", "xml_curl", "event_socket"}, only) {
				return fmt.Errorf("--only: %q is not xml_curl or event_socket", only)
			}
			if node == "" {
				node = defaultESLAddr
				if len(a.cfg.ESLNodes) > 0 {
					node = a.cfg.ESLNodes[0]
				}
			}
			var curl, esl []byte
			if only != "event_socket" {
				if a.cfg.XMLCurlUser == "" || a.cfg.XMLCurlPassword == "" {
					return fmt.Errorf("no HTTP Basic credentials for FreeSWITCH are configured; mod_xml_curl can send only Basic.\n"+
						"Set both for `fsplane serve` and for this command, e.g.\n"+
						"  %s=freeswitch\n  %s=$(openssl rand -hex 24)\n"+
						"(environment or the config file), restart fsplane and run freeswitch-config again",
						config.EnvXMLCurlUser, config.EnvXMLCurlPassword)
				}
				var err error
				curl, err = xmlcurl.BindingConfig(xmlcurl.Binding{
					URL:  strings.TrimSuffix(a.cfg.PublicURL, "/") + xmlcurl.Path,
					User: a.cfg.XMLCurlUser, Password: a.cfg.XMLCurlPassword,
				})
				if err != nil {
					return err
				}
			}
			if only != "xml_curl" {
				var err error
				esl, err = xmlcurl.EventSocketConfig(xmlcurl.EventSocket{Addr: node, Password: a.cfg.ESLPassword})
				if err != nil {
					return fmt.Errorf("--node %s: %w", node, err)
				}
			}
			w := a.stdout
			switch only {
			case "xml_curl":
				_, err := w.Write(curl)
				return err
			case "event_socket":
				_, err := w.Write(esl)
				return err
			}
			fmt.Fprintf(w, "# fsplane freeswitch-config: two files for FreeSWITCH's conf directory.\n#\n")
			fmt.Fprintf(w, "# Load mod_xml_curl BEFORE mod_sofia in autoload_configs/modules.conf.xml:\n")
			fmt.Fprintf(w, "#   <load module=\"mod_xml_curl\"/>\n#   <load module=\"mod_sofia\"/>\n")
			fmt.Fprintf(w, "# otherwise sofia starts from its static sofia.conf and never asks fsplane.\n")
			if loopbackURL(a.cfg.PublicURL) {
				fmt.Fprintf(w, "#\n# %s is %s: FreeSWITCH must run on this host, or set %s\n# to an address FreeSWITCH can reach.\n",
					config.EnvPublicURL, a.cfg.PublicURL, config.EnvPublicURL)
			}
			fmt.Fprintf(w, "\n# ==> autoload_configs/xml_curl.conf.xml <==\n")
			w.Write(curl)
			fmt.Fprintf(w, "\n# ==> autoload_configs/event_socket.conf.xml <== (for the node fsplane reaches at %s)\n", node)
			if len(a.cfg.ESLNodes) > 1 {
				fmt.Fprintf(w, "# other nodes: run again with --node for each of %s\n", strings.Join(a.cfg.ESLNodes[1:], ", "))
			}
			_, err := w.Write(esl)
			return err
		},
	}
	cmd.Flags().StringVar(&only, "only", "", "print just one file, bare: xml_curl or event_socket")
	cmd.Flags().StringVar(&node, "node", "", "the event socket (host:port) the event_socket file is for (default: the first --esl node, or "+defaultESLAddr+")")
	return cmd
}

func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := p.Hostname()
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
