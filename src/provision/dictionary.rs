//! Field dictionaries: per vendor and firmware generation, the keys a built-in
//! template may write, each with the public source that shows the firmware
//! reads it, and what a phone needs to register and keep time, with where it
//! is written and the value it must have.
//!
//! Sources were read, not copied: wazo-provd-plugins (per-firmware Jinja
//! templates), FusionPBX and nethesis/tancredi provisioning templates, and
//! the vendors' own references where a public page shows the field. A test
//! (`tests/prov_catalogue.rs`) renders every built-in model and checks each
//! file against the dictionary of its firmware: syntax, every key known,
//! every need present with the right value.
//!
//! Expressions (`when`, `value`) are minijinja expressions over the
//! placeholders (`PBXADDRESS`, `IPADDR`, `YEALINK_TZ`...).

/// A public source of a key or a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// wazo-provd-plugins, `plugins/wazo_yealink/v86/templates/base.tpl` and
    /// `v86/common.py` (`_format_tz_info`), `v87/templates/base-dect.tpl`.
    WazoYealink,
    /// FusionPBX, `resources/templates/provision/yealink/t46u/` (`{$mac}.cfg`,
    /// `y000000000108.cfg`, `y000000000000.boot`).
    FusionYealink,
    /// Yealink Administrator Guide and Auto Provisioning Guide (V81+): boot
    /// files, DST by week, AutoDST attributes.
    YealinkGuide,
    /// wazo-provd-plugins, `plugins/wazo_snom/common/templates/base.tpl`.
    WazoSnom,
    /// Snom settings reference (service.snom.com, "Configuration Settings").
    SnomSettings,
    /// FusionPBX, `resources/templates/provision/grandstream/gxp21xx/{$mac}.xml`
    /// (each P-value with Grandstream's description) and `dp715` (`P64`
    /// customize, `P246`).
    FusionGrandstream,
    /// wazo-provd-plugins, `plugins/wazo_grandstream/common/templates/base.tpl`.
    WazoGrandstream,
    /// nethesis/tancredi, `data/templates/fanvil-X5.tmpl` (plain text, X-U
    /// firmware).
    TancrediFanvil,
    /// FusionPBX `resources/templates/provision/fanvil/w611w/{$mac}.xml` and
    /// `app/fanvil/app_config.php` (DST type and rule mode values).
    FusionFanvil,
    /// wazo-provd-plugins,
    /// `plugins/wazo_gigaset/Nx70_83_v2_65_0/templates/base.tpl`.
    WazoGigaset,
    /// wazo-provd-plugins, `plugins/wazo_polycom/common/templates/base.tpl`,
    /// `common/common.py` (`_format_tzinfo`), `v6_4_6/var/tftpboot/000000000000.cfg`.
    WazoPoly,
    /// FusionPBX, `resources/templates/provision/poly/edge-e550/{$mac}.cfg`.
    FusionPoly,
    /// Poly/Polycom UC Software administrator guide: master configuration
    /// files, `<device/>` parameters (`device.set`, `device.xxx.set`,
    /// `device.net.ipAddress`...).
    PolyGuide,
    /// wazo-provd-plugins, `plugins/wazo_cisco_sip/v11_3_1/templates/base.tpl`,
    /// `common/model.cfg.tpl` and `common.py` (`_format_tzinfo`).
    WazoCisco,
    /// FusionPBX, `resources/templates/provision/cisco/8841/{$mac}.xml`.
    FusionCisco,
}

impl Source {
    pub fn cite(self) -> &'static str {
        match self {
            Source::WazoYealink => {
                "https://github.com/wazo-platform/wazo-provd-plugins plugins/wazo_yealink/v86"
            }
            Source::FusionYealink => {
                "https://github.com/fusionpbx/fusionpbx resources/templates/provision/yealink/t46u"
            }
            Source::YealinkGuide => {
                "Yealink Administrator Guide / Auto Provisioning Guide (support.yealink.com)"
            }
            Source::WazoSnom => {
                "https://github.com/wazo-platform/wazo-provd-plugins plugins/wazo_snom/common"
            }
            Source::SnomSettings => "Snom settings reference (service.snom.com)",
            Source::FusionGrandstream => {
                "https://github.com/fusionpbx/fusionpbx resources/templates/provision/grandstream/gxp21xx"
            }
            Source::WazoGrandstream => {
                "https://github.com/wazo-platform/wazo-provd-plugins plugins/wazo_grandstream/common"
            }
            Source::TancrediFanvil => {
                "https://github.com/nethesis/tancredi data/templates/fanvil-X5.tmpl"
            }
            Source::FusionFanvil => {
                "https://github.com/fusionpbx/fusionpbx resources/templates/provision/fanvil/w611w"
            }
            Source::WazoGigaset => {
                "https://github.com/wazo-platform/wazo-provd-plugins plugins/wazo_gigaset/Nx70_83_v2_65_0"
            }
            Source::WazoPoly => {
                "https://github.com/wazo-platform/wazo-provd-plugins plugins/wazo_polycom"
            }
            Source::FusionPoly => {
                "https://github.com/fusionpbx/fusionpbx resources/templates/provision/poly/edge-e550"
            }
            Source::PolyGuide => "Poly UC Software administrator guide (docs.poly.com)",
            Source::WazoCisco => {
                "https://github.com/wazo-platform/wazo-provd-plugins plugins/wazo_cisco_sip/v11_3_1"
            }
            Source::FusionCisco => {
                "https://github.com/fusionpbx/fusionpbx resources/templates/provision/cisco/8841"
            }
        }
    }
}

/// How a file is written (the test's grammar for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `#!version:1.0.0.1` then `key = value` lines, `#` comments.
    YealinkCfg,
    /// `#!version:1.0.0.1` then `include:config "file"` lines.
    YealinkBoot,
    /// `<settings><phone-settings><name perm=..>value</name>`.
    SnomXml,
    /// `<gs_provision><config><Pn>value</Pn>`.
    GrandstreamXml,
    /// `<<VOIP CONFIG FILE>>Version:...`, `<SECTION MODULE>` lines, `Key :value`
    /// lines, `<<END OF FILE>>`.
    FanvilText,
    /// `<provisioning version="1.1" productID="e2"><nvm><param name value/>`,
    /// `<oper name value>`.
    GigasetXml,
    /// `<APPLICATION APP_FILE_PATH CONFIG_FILES .../>`.
    PolyMaster,
    /// One element whose attributes are the parameters (`<polycomConfig a="v"/>`).
    PolyXml,
    /// `<flat-profile><Name ua="na">value</Name>`.
    CiscoXml,
}

/// A key a firmware reads.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub source: Source,
}

/// What a phone needs to register and keep time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    Server,
    Port,
    Transport,
    User,
    AuthUser,
    Password,
    DisplayName,
    Ntp,
    TimeZone,
    DaylightSaving,
    AdminPassword,
    StaticNetwork,
    /// Where the phone comes back for its files.
    Provisioning,
    /// The boot file names the next files.
    Chain,
}

/// A need, where it is written and the value it must have.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    pub need: Need,
    /// When it applies (an expression, e.g. `IPADDRMODE == "off"`).
    pub when: &'static str,
    pub key: &'static str,
    /// The value it must have (an expression).
    pub value: &'static str,
}

/// One firmware generation's file.
#[derive(Clone, Copy, Debug)]
pub struct Dictionary {
    pub id: &'static str,
    pub vendor: &'static str,
    pub firmware: &'static str,
    /// The built-in models it is for (name prefixes).
    pub models: &'static [&'static str],
    /// The files it is for: a glob (`*` for any run of characters).
    pub files: &'static str,
    pub syntax: Syntax,
    pub keys: &'static [Key],
    pub required: &'static [Requirement],
    /// Needs this generation's public references do not cover, and why; the
    /// catalogue warns instead of writing them.
    pub unsupported: &'static [(Need, &'static str)],
}

/// The dictionary for a built-in model's file.
pub fn for_file(model: &str, file: &str) -> Option<&'static Dictionary> {
    DICTIONARIES
        .iter()
        .find(|d| d.models.iter().any(|m| model.starts_with(m)) && glob(d.files, file))
}

/// `*` matches any run of characters (none included).
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            name.starts_with(head)
                && (head.len()..=name.len())
                    .any(|i| name.is_char_boundary(i) && glob(rest, &name[i..]))
        }
    }
}

const fn k(name: &'static str, source: Source) -> Key {
    Key { name, source }
}

const fn r(need: Need, when: &'static str, key: &'static str, value: &'static str) -> Requirement {
    Requirement {
        need,
        when,
        key,
        value,
    }
}

const ALWAYS: &str = "true";
const STATIC: &str = "IPADDRMODE == \"off\"";
const DHCP: &str = "IPADDRMODE == \"on\"";
const ADMIN: &str = "PHONEPASSWORD";

use Need::*;
use Source::*;

const YEALINK_CFG_KEYS: &[Key] = &[
    k("account.1.enable", WazoYealink),
    k("account.1.label", WazoYealink),
    // v87 base-dect.tpl; FusionPBX t46u {$mac}.cfg.
    k("account.1.display_name", WazoYealink),
    k("account.1.auth_name", WazoYealink),
    k("account.1.user_name", WazoYealink),
    k("account.1.password", WazoYealink),
    k("account.1.sip_server.1.address", WazoYealink),
    k("account.1.sip_server.1.port", WazoYealink),
    // 0 UDP, 1 TCP, 2 TLS (wazo _SIP_TRANSPORT; FusionPBX comment).
    k("account.1.sip_server.1.transport_type", WazoYealink),
    k("local_time.ntp_server1", WazoYealink),
    k("local_time.time_zone", WazoYealink),
    // FusionPBX y000000000108.cfg; names from the Yealink guide's list.
    k("local_time.time_zone_name", FusionYealink),
    // 0 off, 1 on, 2 automatic; dst_time_type 1 = by week.
    k("local_time.summer_time", WazoYealink),
    k("local_time.dst_time_type", WazoYealink),
    k("local_time.start_time", WazoYealink),
    k("local_time.end_time", WazoYealink),
    k("local_time.offset_time", WazoYealink),
    // 0 DHCP, 2 static (FusionPBX y000000000108.cfg; Yealink guide).
    k("static.network.internet_port.type", FusionYealink),
    k("static.network.internet_port.ip", FusionYealink),
    k("static.network.internet_port.mask", FusionYealink),
    k("static.network.internet_port.gateway", FusionYealink),
    k("static.network.primary_dns", FusionYealink),
    k("static.network.secondary_dns", FusionYealink),
    k("static.security.user_name.admin", WazoYealink),
    // "user:password" (wazo base.tpl).
    k("static.security.user_password", WazoYealink),
    k("static.auto_provision.server.url", WazoYealink),
];

const YEALINK_CFG_REQUIRED: &[Requirement] = &[
    r(
        Server,
        ALWAYS,
        "account.1.sip_server.1.address",
        "PBXADDRESS",
    ),
    r(Port, ALWAYS, "account.1.sip_server.1.port", "SIPPORT"),
    r(
        Transport,
        ALWAYS,
        "account.1.sip_server.1.transport_type",
        "'0'",
    ),
    r(User, ALWAYS, "account.1.user_name", "SIPUSER"),
    r(AuthUser, ALWAYS, "account.1.auth_name", "SIPUSER"),
    r(Password, ALWAYS, "account.1.password", "SIPPASSWORD"),
    r(DisplayName, ALWAYS, "account.1.display_name", "DISPLAYNAME"),
    r(Ntp, ALWAYS, "local_time.ntp_server1", "NTPSERVER"),
    r(TimeZone, "YEALINK_TZ", "local_time.time_zone", "YEALINK_TZ"),
    r(
        DaylightSaving,
        "YEALINK_TZ and TZDST == '1'",
        "local_time.summer_time",
        "'1'",
    ),
    r(
        DaylightSaving,
        "YEALINK_TZ and TZDST == '1'",
        "local_time.dst_time_type",
        "'1'",
    ),
    r(
        DaylightSaving,
        "YEALINK_TZ and TZDST == '1'",
        "local_time.start_time",
        "YEALINK_DST_START",
    ),
    r(
        DaylightSaving,
        "YEALINK_TZ and TZDST == '1'",
        "local_time.end_time",
        "YEALINK_DST_END",
    ),
    r(
        DaylightSaving,
        "YEALINK_TZ and TZDST == '1'",
        "local_time.offset_time",
        "YEALINK_DST_OFFSET",
    ),
    r(
        DaylightSaving,
        "YEALINK_TZ and TZDST == '0'",
        "local_time.summer_time",
        "'0'",
    ),
    r(
        StaticNetwork,
        DHCP,
        "static.network.internet_port.type",
        "'0'",
    ),
    r(
        StaticNetwork,
        STATIC,
        "static.network.internet_port.type",
        "'2'",
    ),
    r(
        StaticNetwork,
        STATIC,
        "static.network.internet_port.ip",
        "IPADDR",
    ),
    r(
        StaticNetwork,
        STATIC,
        "static.network.internet_port.mask",
        "IPNETMASK",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPGATEWAY",
        "static.network.internet_port.gateway",
        "IPGATEWAY",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS1",
        "static.network.primary_dns",
        "IPDNS1",
    ),
    r(
        AdminPassword,
        ADMIN,
        "static.security.user_password",
        "(PHONEUSERNAME or 'admin') ~ ':' ~ PHONEPASSWORD",
    ),
];

const YEALINK_BOOT_REQUIRED: &[Requirement] = &[
    r(Chain, ALWAYS, "include:config", "'\"y000000000000.cfg\"'"),
    r(
        Chain,
        ALWAYS,
        "include:config",
        "'\"' ~ MACLOWER ~ '.cfg\"'",
    ),
];

const SNOM_KEYS: &[Key] = &[
    k("user_active", WazoSnom),
    k("user_realname", WazoSnom),
    k("user_name", WazoSnom),
    // The authentication name.
    k("user_pname", WazoSnom),
    k("user_pass", WazoSnom),
    k("user_host", WazoSnom),
    // host:port;transport=udp|tcp|tls (wazo base.tpl).
    k("user_outbound", WazoSnom),
    k("ntp_server", WazoSnom),
    // Codes such as ITA+1 (wazo common.py _add_timezone; Snom's list).
    k("timezone", WazoSnom),
    k("dhcp", SnomSettings),
    k("ip_adr", SnomSettings),
    k("netmask", SnomSettings),
    k("gateway", SnomSettings),
    k("dns_server1", SnomSettings),
    k("dns_server2", SnomSettings),
    k("admin_mode_password", WazoSnom),
    k("http_user", WazoSnom),
    k("http_pass", WazoSnom),
    // {mac} is expanded by the phone (Snom mass-deployment FAQ).
    k("setting_server", WazoSnom),
];

const SNOM_REQUIRED: &[Requirement] = &[
    r(Server, ALWAYS, "user_host", "PBXADDRESS ~ ':' ~ SIPPORT"),
    r(
        Port,
        ALWAYS,
        "user_outbound",
        "PBXADDRESS ~ ':' ~ SIPPORT ~ ';transport=udp'",
    ),
    r(
        Transport,
        ALWAYS,
        "user_outbound",
        "PBXADDRESS ~ ':' ~ SIPPORT ~ ';transport=udp'",
    ),
    r(User, ALWAYS, "user_name", "SIPUSER"),
    r(AuthUser, ALWAYS, "user_pname", "SIPUSER"),
    r(Password, ALWAYS, "user_pass", "SIPPASSWORD"),
    r(DisplayName, ALWAYS, "user_realname", "DISPLAYNAME"),
    r(Ntp, ALWAYS, "ntp_server", "NTPSERVER"),
    r(TimeZone, "SNOM_TZ", "timezone", "SNOM_TZ"),
    // The code carries the rule.
    r(DaylightSaving, "SNOM_TZ", "timezone", "SNOM_TZ"),
    r(StaticNetwork, ALWAYS, "dhcp", "IPADDRMODE"),
    r(StaticNetwork, STATIC, "ip_adr", "IPADDR"),
    r(StaticNetwork, STATIC, "netmask", "IPNETMASK"),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPGATEWAY",
        "gateway",
        "IPGATEWAY",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS1",
        "dns_server1",
        "IPDNS1",
    ),
    r(AdminPassword, ADMIN, "admin_mode_password", "PHONEPASSWORD"),
    r(AdminPassword, ADMIN, "http_pass", "PHONEPASSWORD"),
    r(
        Provisioning,
        ALWAYS,
        "setting_server",
        "PROVURL ~ '{mac}.xml'",
    ),
];

const SNOM_MODEL_REQUIRED: &[Requirement] = &[r(
    Provisioning,
    ALWAYS,
    "setting_server",
    "PROVURL ~ '{mac}.xml'",
)];

const GRANDSTREAM_KEYS: &[Key] = &[
    k("P271", FusionGrandstream), // account active
    k("P270", FusionGrandstream), // account name
    k("P47", FusionGrandstream),  // SIP server (host:port)
    k("P130", FusionGrandstream), // SIP transport: 0 UDP, 1 TCP, 2 TLS
    k("P35", FusionGrandstream),  // SIP user ID
    k("P36", FusionGrandstream),  // authenticate ID
    k("P34", FusionGrandstream),  // authenticate password
    k("P3", FusionGrandstream),   // display name
    k("P30", FusionGrandstream),  // NTP server
    // Time zone: a value of its list, or "customize" with P246 the POSIX rule.
    k("P64", FusionGrandstream),
    k("P246", FusionGrandstream),
    k("P237", FusionGrandstream), // config server path (host/path, no scheme)
    k("P212", FusionGrandstream), // upgrade via: 0 TFTP, 1 HTTP, 2 HTTPS
    k("P8", FusionGrandstream),   // IP address mode: 0 DHCP, 1 static, 2 PPPoE
    // P9-P12 IP octets, P13-P16 netmask, P17-P20 gateway, P21-P24 DNS 1,
    // P25-P28 DNS 2, one octet each.
    k("P9", FusionGrandstream),
    k("P10", FusionGrandstream),
    k("P11", FusionGrandstream),
    k("P12", FusionGrandstream),
    k("P13", FusionGrandstream),
    k("P14", FusionGrandstream),
    k("P15", FusionGrandstream),
    k("P16", FusionGrandstream),
    k("P17", FusionGrandstream),
    k("P18", FusionGrandstream),
    k("P19", FusionGrandstream),
    k("P20", FusionGrandstream),
    k("P21", FusionGrandstream),
    k("P22", FusionGrandstream),
    k("P23", FusionGrandstream),
    k("P24", FusionGrandstream),
    k("P25", FusionGrandstream),
    k("P26", FusionGrandstream),
    k("P27", FusionGrandstream),
    k("P28", FusionGrandstream),
    k("P2", FusionGrandstream), // admin password
];

const GRANDSTREAM_REQUIRED: &[Requirement] = &[
    r(Server, ALWAYS, "P47", "PBXADDRESS ~ ':' ~ SIPPORT"),
    r(Port, ALWAYS, "P47", "PBXADDRESS ~ ':' ~ SIPPORT"),
    r(Transport, ALWAYS, "P130", "'0'"),
    r(User, ALWAYS, "P35", "SIPUSER"),
    r(AuthUser, ALWAYS, "P36", "SIPUSER"),
    r(Password, ALWAYS, "P34", "SIPPASSWORD"),
    r(DisplayName, ALWAYS, "P3", "DISPLAYNAME"),
    r(Ntp, ALWAYS, "P30", "NTPSERVER"),
    r(TimeZone, "TZPOSIX", "P64", "'customize'"),
    r(DaylightSaving, "TZPOSIX", "P246", "TZPOSIX"),
    r(StaticNetwork, DHCP, "P8", "'0'"),
    r(StaticNetwork, STATIC, "P8", "'1'"),
    r(StaticNetwork, STATIC, "P9", "(IPADDR|split('.')|list)[0]"),
    r(StaticNetwork, STATIC, "P10", "(IPADDR|split('.')|list)[1]"),
    r(StaticNetwork, STATIC, "P11", "(IPADDR|split('.')|list)[2]"),
    r(StaticNetwork, STATIC, "P12", "(IPADDR|split('.')|list)[3]"),
    r(
        StaticNetwork,
        STATIC,
        "P13",
        "(IPNETMASK|split('.')|list)[0]",
    ),
    r(
        StaticNetwork,
        STATIC,
        "P14",
        "(IPNETMASK|split('.')|list)[1]",
    ),
    r(
        StaticNetwork,
        STATIC,
        "P15",
        "(IPNETMASK|split('.')|list)[2]",
    ),
    r(
        StaticNetwork,
        STATIC,
        "P16",
        "(IPNETMASK|split('.')|list)[3]",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPGATEWAY",
        "P17",
        "(IPGATEWAY|split('.')|list)[0]",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPGATEWAY",
        "P20",
        "(IPGATEWAY|split('.')|list)[3]",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS1",
        "P21",
        "(IPDNS1|split('.')|list)[0]",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS1",
        "P24",
        "(IPDNS1|split('.')|list)[3]",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS2",
        "P25",
        "(IPDNS2|split('.')|list)[0]",
    ),
    r(AdminPassword, ADMIN, "P2", "PHONEPASSWORD"),
];

const FANVIL_KEYS: &[Key] = &[
    k("WAN TYPE", TancrediFanvil), // 0 DHCP, 1 static (see README)
    k("Enable DHCP", TancrediFanvil),
    k("WAN IP", TancrediFanvil),
    k("WAN Subnet Mask", TancrediFanvil),
    k("WAN Gateway", TancrediFanvil),
    k("Primary DNS", TancrediFanvil),
    k("Secondary DNS", TancrediFanvil),
    k("SIP1 Phone Number", TancrediFanvil),
    k("SIP1 Display Name", TancrediFanvil),
    k("SIP1 Sip Name", TancrediFanvil),
    k("SIP1 Register Addr", TancrediFanvil),
    k("SIP1 Register Port", TancrediFanvil),
    k("SIP1 Register User", TancrediFanvil),
    k("SIP1 Register Pswd", TancrediFanvil),
    k("SIP1 Enable Reg", TancrediFanvil),
    k("SIP1 Transport", TancrediFanvil), // 0 UDP, 1 TCP, 3 TLS
    k("Enable SNTP", TancrediFanvil),
    k("SNTP Server", TancrediFanvil),
    // Standard offset in quarter hours, and its name (UTC+1).
    k("Time Zone", TancrediFanvil),
    k("Time Zone Name", TancrediFanvil),
    // 0 off, 1 automatic, 2 manual; rule mode 2 = by week (FusionPBX
    // w611w maps DSTType/DSTRuleMode from fanvil_enable_dst and
    // fanvil_dst_fixed_type, whose values app_config.php describes).
    k("DST Type", FusionFanvil),
    k("DST Rule Mode", FusionFanvil),
    k("DST Min Offset", TancrediFanvil),
    k("DST Start Mon", TancrediFanvil),
    k("DST Start Week", TancrediFanvil),
    k("DST Start Wday", TancrediFanvil),
    k("DST Start Hour", TancrediFanvil),
    k("DST End Mon", TancrediFanvil),
    k("DST End Week", TancrediFanvil),
    k("DST End Wday", TancrediFanvil),
    k("DST End Hour", TancrediFanvil),
    k("Account1 Name", TancrediFanvil),
    k("Account1 Password", TancrediFanvil),
    k("Account1 Level", TancrediFanvil),
];

const FANVIL_REQUIRED: &[Requirement] = &[
    r(Server, ALWAYS, "SIP1 Register Addr", "PBXADDRESS"),
    r(Port, ALWAYS, "SIP1 Register Port", "SIPPORT"),
    r(Transport, ALWAYS, "SIP1 Transport", "'0'"),
    r(User, ALWAYS, "SIP1 Phone Number", "SIPUSER"),
    r(AuthUser, ALWAYS, "SIP1 Register User", "SIPUSER"),
    r(Password, ALWAYS, "SIP1 Register Pswd", "SIPPASSWORD"),
    r(DisplayName, ALWAYS, "SIP1 Display Name", "DISPLAYNAME"),
    r(Ntp, ALWAYS, "SNTP Server", "NTPSERVER"),
    r(TimeZone, "FANVIL_TZ", "Time Zone", "FANVIL_TZ"),
    r(TimeZone, "FANVIL_TZ", "Time Zone Name", "FANVIL_TZ_NAME"),
    r(
        DaylightSaving,
        "FANVIL_TZ and TZDST == '1'",
        "DST Type",
        "'2'",
    ),
    r(
        DaylightSaving,
        "FANVIL_TZ and TZDST == '1'",
        "DST Rule Mode",
        "'2'",
    ),
    r(
        DaylightSaving,
        "FANVIL_TZ and TZDST == '1'",
        "DST Min Offset",
        "FANVIL_DST_OFFSET",
    ),
    r(
        DaylightSaving,
        "FANVIL_TZ and TZDST == '1'",
        "DST Start Mon",
        "FANVIL_DST_START_MONTH",
    ),
    r(
        DaylightSaving,
        "FANVIL_TZ and TZDST == '1'",
        "DST End Hour",
        "FANVIL_DST_END_HOUR",
    ),
    r(
        DaylightSaving,
        "FANVIL_TZ and TZDST == '0'",
        "DST Type",
        "'0'",
    ),
    r(StaticNetwork, DHCP, "WAN TYPE", "'0'"),
    r(StaticNetwork, STATIC, "WAN TYPE", "'1'"),
    r(StaticNetwork, STATIC, "WAN IP", "IPADDR"),
    r(StaticNetwork, STATIC, "WAN Subnet Mask", "IPNETMASK"),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPGATEWAY",
        "WAN Gateway",
        "IPGATEWAY",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS1",
        "Primary DNS",
        "IPDNS1",
    ),
    r(AdminPassword, ADMIN, "Account1 Password", "PHONEPASSWORD"),
];

const GIGASET_KEYS: &[Key] = &[
    k("Provisioning.global.ProvisioningServer", WazoGigaset),
    k("DmGlobal.0.NtpServer", WazoGigaset),
    // An IANA name from the base's list (wazo common.py _VALID_TZ_GIGASET).
    k("DmGlobal.0.TimeZone", WazoGigaset),
    k("WebUIAccounts.1.Password", WazoGigaset),
    k("SipProvider.0.Name", WazoGigaset),
    k("SipProvider.0.Domain", WazoGigaset),
    k("SipProvider.0.ProxyServerAddress", WazoGigaset),
    k("SipProvider.0.ProxyServerPort", WazoGigaset),
    k("SipProvider.0.RegServerAddress", WazoGigaset),
    k("SipProvider.0.RegServerPort", WazoGigaset),
    // 1 UDP, 2 TCP, 3 TLS (wazo common.py _SIP_TRANSPORT).
    k("SipProvider.0.TransportProtocol", WazoGigaset),
    // Handset registration: <oper name="add_hs" value="00001"> with
    // hs.RegStatus=ToReg, and its DECT access code.
    k("oper:add_hs", WazoGigaset),
    k("hs.RegStatus", WazoGigaset),
    k("hs.00001.DECT_AC", WazoGigaset),
    k("SipAccount.00001.ProviderId", WazoGigaset),
    k("SipAccount.00001.AuthName", WazoGigaset),
    k("SipAccount.00001.AuthPassword", WazoGigaset),
    k("SipAccount.00001.UserName", WazoGigaset),
    k("SipAccount.00001.DisplayName", WazoGigaset),
];

const GIGASET_REQUIRED: &[Requirement] = &[
    r(
        Server,
        ALWAYS,
        "SipProvider.0.ProxyServerAddress",
        "PBXADDRESS",
    ),
    r(
        Server,
        ALWAYS,
        "SipProvider.0.RegServerAddress",
        "PBXADDRESS",
    ),
    r(Server, ALWAYS, "SipProvider.0.Domain", "PBXADDRESS"),
    r(Port, ALWAYS, "SipProvider.0.ProxyServerPort", "SIPPORT"),
    r(Port, ALWAYS, "SipProvider.0.RegServerPort", "SIPPORT"),
    r(Transport, ALWAYS, "SipProvider.0.TransportProtocol", "'1'"),
    r(User, ALWAYS, "SipAccount.00001.UserName", "SIPUSER"),
    r(AuthUser, ALWAYS, "SipAccount.00001.AuthName", "SIPUSER"),
    r(
        Password,
        ALWAYS,
        "SipAccount.00001.AuthPassword",
        "SIPPASSWORD",
    ),
    r(
        DisplayName,
        ALWAYS,
        "SipAccount.00001.DisplayName",
        "DISPLAYNAME",
    ),
    r(Ntp, ALWAYS, "DmGlobal.0.NtpServer", "NTPSERVER"),
    r(TimeZone, "GIGASET_TZ", "DmGlobal.0.TimeZone", "GIGASET_TZ"),
    r(
        DaylightSaving,
        "GIGASET_TZ",
        "DmGlobal.0.TimeZone",
        "GIGASET_TZ",
    ),
    r(
        AdminPassword,
        ADMIN,
        "WebUIAccounts.1.Password",
        "PHONEPASSWORD",
    ),
    r(Chain, ALWAYS, "oper:add_hs", "'00001'"),
    r(Chain, ALWAYS, "hs.RegStatus", "'ToReg'"),
    r(Chain, ALWAYS, "SipAccount.00001.ProviderId", "'0'"),
];

const POLY_MASTER_KEYS: &[Key] = &[
    k("APP_FILE_PATH", PolyGuide),
    k("CONFIG_FILES", PolyGuide),
    k("MISC_FILES", PolyGuide),
    k("LOG_FILE_DIRECTORY", PolyGuide),
    k("OVERRIDES_DIRECTORY", PolyGuide),
    k("CONTACTS_DIRECTORY", PolyGuide),
    k("LICENSE_DIRECTORY", PolyGuide),
];

const POLY_MASTER_REQUIRED: &[Requirement] = &[r(
    Chain,
    ALWAYS,
    "CONFIG_FILES",
    "'[PHONE_MAC_ADDRESS]-kpbx.cfg'",
)];

const POLY_KEYS: &[Key] = &[
    k("reg.1.address", WazoPoly),
    k("reg.1.label", WazoPoly),
    k("reg.1.displayName", WazoPoly),
    k("reg.1.auth.userId", WazoPoly),
    k("reg.1.auth.password", WazoPoly),
    k("reg.1.server.1.address", WazoPoly),
    k("reg.1.server.1.port", WazoPoly),
    // UDPOnly, TCPOnly, TLS (wazo _SIP_TRANSPORT).
    k("reg.1.server.1.transport", WazoPoly),
    k("reg.1.server.1.register", WazoPoly),
    k("tcpIpApp.sntp.address", WazoPoly),
    k("tcpIpApp.sntp.address.overrideDHCP", WazoPoly),
    k("tcpIpApp.sntp.gmtOffset", WazoPoly),
    k("tcpIpApp.sntp.gmtOffset.overrideDHCP", FusionPoly),
    k("tcpIpApp.sntp.daylightSavings.enable", WazoPoly),
    k("tcpIpApp.sntp.daylightSavings.fixedDayEnable", WazoPoly),
    k("tcpIpApp.sntp.daylightSavings.start.month", WazoPoly),
    k("tcpIpApp.sntp.daylightSavings.start.date", WazoPoly),
    k("tcpIpApp.sntp.daylightSavings.start.dayOfWeek", WazoPoly),
    k(
        "tcpIpApp.sntp.daylightSavings.start.dayOfWeek.lastInMonth",
        WazoPoly,
    ),
    k("tcpIpApp.sntp.daylightSavings.start.time", WazoPoly),
    k("tcpIpApp.sntp.daylightSavings.stop.month", WazoPoly),
    k("tcpIpApp.sntp.daylightSavings.stop.date", WazoPoly),
    k("tcpIpApp.sntp.daylightSavings.stop.dayOfWeek", WazoPoly),
    k(
        "tcpIpApp.sntp.daylightSavings.stop.dayOfWeek.lastInMonth",
        WazoPoly,
    ),
    k("tcpIpApp.sntp.daylightSavings.stop.time", WazoPoly),
    // device.xxx is used only with device.set=1 and device.xxx.set=1.
    k("device.set", PolyGuide),
    k("device.dhcp.enabled", PolyGuide),
    k("device.dhcp.enabled.set", PolyGuide),
    k("device.net.ipAddress", PolyGuide),
    k("device.net.ipAddress.set", PolyGuide),
    k("device.net.subnetMask", PolyGuide),
    k("device.net.subnetMask.set", PolyGuide),
    k("device.net.IPgateway", PolyGuide),
    k("device.net.IPgateway.set", PolyGuide),
    k("device.dns.serverAddress", FusionPoly),
    k("device.dns.serverAddress.set", FusionPoly),
    k("device.dns.altSrvAddress", FusionPoly),
    k("device.dns.altSrvAddress.set", FusionPoly),
    k("device.auth.localAdminPassword", WazoPoly),
    k("device.auth.localAdminPassword.set", WazoPoly),
];

const POLY_REQUIRED: &[Requirement] = &[
    r(Server, ALWAYS, "reg.1.server.1.address", "PBXADDRESS"),
    r(Port, ALWAYS, "reg.1.server.1.port", "SIPPORT"),
    r(Transport, ALWAYS, "reg.1.server.1.transport", "'UDPOnly'"),
    r(User, ALWAYS, "reg.1.address", "SIPUSER"),
    r(AuthUser, ALWAYS, "reg.1.auth.userId", "SIPUSER"),
    r(Password, ALWAYS, "reg.1.auth.password", "SIPPASSWORD"),
    r(DisplayName, ALWAYS, "reg.1.displayName", "DISPLAYNAME"),
    r(Ntp, ALWAYS, "tcpIpApp.sntp.address", "NTPSERVER"),
    r(TimeZone, "POLY_TZ", "tcpIpApp.sntp.gmtOffset", "POLY_TZ"),
    r(
        DaylightSaving,
        "POLY_TZ and TZDST == '1'",
        "tcpIpApp.sntp.daylightSavings.enable",
        "'1'",
    ),
    r(
        DaylightSaving,
        "POLY_TZ and TZDST == '1'",
        "tcpIpApp.sntp.daylightSavings.fixedDayEnable",
        "'0'",
    ),
    r(
        DaylightSaving,
        "POLY_TZ and TZDST == '1'",
        "tcpIpApp.sntp.daylightSavings.start.month",
        "POLY_DST_START_MONTH",
    ),
    r(
        DaylightSaving,
        "POLY_TZ and TZDST == '1'",
        "tcpIpApp.sntp.daylightSavings.stop.time",
        "POLY_DST_STOP_TIME",
    ),
    r(
        DaylightSaving,
        "POLY_TZ and TZDST == '0'",
        "tcpIpApp.sntp.daylightSavings.enable",
        "'0'",
    ),
    r(StaticNetwork, ALWAYS, "device.set", "'1'"),
    r(StaticNetwork, DHCP, "device.dhcp.enabled", "'1'"),
    r(StaticNetwork, STATIC, "device.dhcp.enabled", "'0'"),
    r(StaticNetwork, STATIC, "device.net.ipAddress", "IPADDR"),
    r(StaticNetwork, STATIC, "device.net.ipAddress.set", "'1'"),
    r(StaticNetwork, STATIC, "device.net.subnetMask", "IPNETMASK"),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPGATEWAY",
        "device.net.IPgateway",
        "IPGATEWAY",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS1",
        "device.dns.serverAddress",
        "IPDNS1",
    ),
    r(
        AdminPassword,
        ADMIN,
        "device.auth.localAdminPassword",
        "PHONEPASSWORD",
    ),
    r(
        AdminPassword,
        ADMIN,
        "device.auth.localAdminPassword.set",
        "'1'",
    ),
];

const CISCO_KEYS: &[Key] = &[
    k("Line_Enable_1_", WazoCisco),
    k("Proxy_1_", WazoCisco), // host:port
    // UDP, TCP, TLS, AUTO.
    k("SIP_Transport_1_", FusionCisco),
    k("Register_1_", FusionCisco),
    k("Display_Name_1_", WazoCisco),
    k("User_ID_1_", WazoCisco),
    k("Auth_ID_1_", WazoCisco),
    k("Password_1_", WazoCisco),
    k("Station_Name", WazoCisco),
    k("Primary_NTP_Server", WazoCisco),
    // GMT+01:00; the rule start=m/d/w/h:m:s;end=...;save=h:m:s.
    k("Time_Zone", WazoCisco),
    k("Daylight_Saving_Time_Enable", WazoCisco),
    k("Daylight_Saving_Time_Rule", WazoCisco),
    // DHCP | Static IP (wazo base.tpl comment).
    k("Connection_Type", WazoCisco),
    k("Static_IP", WazoCisco),
    k("NetMask", WazoCisco),
    k("Gateway", WazoCisco),
    k("Primary_DNS", WazoCisco),
    k("Secondary_DNS", WazoCisco),
    k("Admin_Password", WazoCisco),
    k("Resync_On_Reset", WazoCisco),
    // $MA = the MAC in lower case (wazo common/model.cfg.tpl).
    k("Profile_Rule_B", WazoCisco),
];

const CISCO_REQUIRED: &[Requirement] = &[
    r(Server, ALWAYS, "Proxy_1_", "PBXADDRESS ~ ':' ~ SIPPORT"),
    r(Port, ALWAYS, "Proxy_1_", "PBXADDRESS ~ ':' ~ SIPPORT"),
    r(Transport, ALWAYS, "SIP_Transport_1_", "'UDP'"),
    r(User, ALWAYS, "User_ID_1_", "SIPUSER"),
    r(AuthUser, ALWAYS, "Auth_ID_1_", "SIPUSER"),
    r(Password, ALWAYS, "Password_1_", "SIPPASSWORD"),
    r(DisplayName, ALWAYS, "Display_Name_1_", "DISPLAYNAME"),
    r(Ntp, ALWAYS, "Primary_NTP_Server", "NTPSERVER"),
    r(TimeZone, "CISCO_TZ", "Time_Zone", "CISCO_TZ"),
    r(
        DaylightSaving,
        "CISCO_TZ and TZDST == '1'",
        "Daylight_Saving_Time_Enable",
        "'Yes'",
    ),
    r(
        DaylightSaving,
        "CISCO_TZ and TZDST == '1'",
        "Daylight_Saving_Time_Rule",
        "CISCO_DST_RULE",
    ),
    r(
        DaylightSaving,
        "CISCO_TZ and TZDST == '0'",
        "Daylight_Saving_Time_Enable",
        "'No'",
    ),
    r(StaticNetwork, DHCP, "Connection_Type", "'DHCP'"),
    r(StaticNetwork, STATIC, "Connection_Type", "'Static IP'"),
    r(StaticNetwork, STATIC, "Static_IP", "IPADDR"),
    r(StaticNetwork, STATIC, "NetMask", "IPNETMASK"),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPGATEWAY",
        "Gateway",
        "IPGATEWAY",
    ),
    r(
        StaticNetwork,
        "IPADDRMODE == 'off' and IPDNS1",
        "Primary_DNS",
        "IPDNS1",
    ),
    r(AdminPassword, ADMIN, "Admin_Password", "PHONEPASSWORD"),
    r(
        Provisioning,
        ALWAYS,
        "Profile_Rule_B",
        "PROVURL ~ '$MA.xml'",
    ),
];

const CISCO_PROFILE_REQUIRED: &[Requirement] = &[r(
    Provisioning,
    ALWAYS,
    "Profile_Rule_B",
    "PROVURL ~ '$MA.xml'",
)];

const COMMON_YEALINK_REQUIRED: &[Requirement] = &[r(
    Provisioning,
    ALWAYS,
    "static.auto_provision.server.url",
    "PROVURL",
)];

/// Every dictionary, most specific file pattern first.
pub const DICTIONARIES: &[Dictionary] = &[
    Dictionary {
        id: "yealink-v84-boot",
        vendor: "Yealink",
        firmware: "V84 and later (boot files since V81)",
        models: &["Yealink-"],
        files: "*.boot",
        syntax: Syntax::YealinkBoot,
        keys: &[k("include:config", YealinkGuide)],
        required: YEALINK_BOOT_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "yealink-v84-common",
        vendor: "Yealink",
        firmware: "V84 and later",
        models: &["Yealink-"],
        files: "y000000000*.cfg",
        syntax: Syntax::YealinkCfg,
        keys: YEALINK_CFG_KEYS,
        required: COMMON_YEALINK_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "yealink-v84",
        vendor: "Yealink",
        firmware: "V84 and later",
        models: &["Yealink-"],
        files: "*.cfg",
        syntax: Syntax::YealinkCfg,
        keys: YEALINK_CFG_KEYS,
        required: YEALINK_CFG_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "snom-10.1-device-htm",
        vendor: "Snom",
        firmware: "10.1 and later",
        models: &["Snom-"],
        files: "snom*-*.htm",
        syntax: Syntax::SnomXml,
        keys: SNOM_KEYS,
        required: SNOM_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "snom-10.1-model",
        vendor: "Snom",
        firmware: "10.1 and later",
        models: &["Snom-"],
        files: "snom*.htm",
        syntax: Syntax::SnomXml,
        keys: SNOM_KEYS,
        required: SNOM_MODEL_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "snom-10.1",
        vendor: "Snom",
        firmware: "10.1 and later",
        models: &["Snom-"],
        files: "*",
        syntax: Syntax::SnomXml,
        keys: SNOM_KEYS,
        required: SNOM_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "grandstream-1.0",
        vendor: "Grandstream",
        firmware: "1.0.x",
        models: &["Grandstream-"],
        files: "cfg*.xml",
        syntax: Syntax::GrandstreamXml,
        keys: GRANDSTREAM_KEYS,
        required: GRANDSTREAM_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "fanvil-x-common",
        vendor: "Fanvil",
        firmware: "2.x",
        models: &["Fanvil-"],
        files: "f0X*",
        syntax: Syntax::FanvilText,
        keys: FANVIL_KEYS,
        required: &[],
        unsupported: &[],
    },
    Dictionary {
        id: "fanvil-x-common-v",
        vendor: "Fanvil",
        firmware: "2.x",
        models: &["Fanvil-"],
        files: "F0V*",
        syntax: Syntax::FanvilText,
        keys: FANVIL_KEYS,
        required: &[],
        unsupported: &[],
    },
    Dictionary {
        id: "fanvil-x",
        vendor: "Fanvil",
        firmware: "2.x (X-U generation, plain text)",
        models: &["Fanvil-"],
        files: "*.cfg",
        syntax: Syntax::FanvilText,
        keys: FANVIL_KEYS,
        required: FANVIL_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "gigaset-nx70-2.x",
        vendor: "Gigaset",
        firmware: "Nx70 IP PRO 2.x",
        models: &["Gigaset-"],
        files: "*.xml",
        syntax: Syntax::GigasetXml,
        keys: GIGASET_KEYS,
        required: GIGASET_REQUIRED,
        unsupported: &[(
            StaticNetwork,
            "no public reference read shows the parameter names of a static address",
        )],
    },
    Dictionary {
        id: "poly-ucs-6-params",
        vendor: "Poly",
        firmware: "UC Software 6.x and later",
        models: &["Poly-"],
        files: "*-kpbx.cfg",
        syntax: Syntax::PolyXml,
        keys: POLY_KEYS,
        required: POLY_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "poly-ucs-master",
        vendor: "Poly",
        firmware: "UC Software (all)",
        models: &["Poly-"],
        files: "*.cfg",
        syntax: Syntax::PolyMaster,
        keys: POLY_MASTER_KEYS,
        required: POLY_MASTER_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "cisco-mpp-profile",
        vendor: "Cisco",
        firmware: "11.x/12.x MPP",
        models: &["Cisco-"],
        files: "*-3PCC.xml",
        syntax: Syntax::CiscoXml,
        keys: CISCO_KEYS,
        required: CISCO_PROFILE_REQUIRED,
        unsupported: &[],
    },
    Dictionary {
        id: "cisco-mpp",
        vendor: "Cisco",
        firmware: "11.x/12.x MPP",
        models: &["Cisco-"],
        files: "*.xml",
        syntax: Syntax::CiscoXml,
        keys: CISCO_KEYS,
        required: CISCO_REQUIRED,
        unsupported: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_file_has_a_dictionary() {
        let cat = super::super::catalogue::catalogue();
        let mac = crate::model::Mac::parse("000413000001").expect("mac");
        for m in &cat.models {
            let files = m
                .rules
                .iter()
                .map(|r| r.file_name(mac))
                .chain(m.model_files.iter().map(|(f, _)| f.clone()));
            for f in files {
                assert!(for_file(&m.name, &f).is_some(), "{}: {f}", m.name);
            }
        }
        assert_eq!(
            for_file("Yealink-T4x", "y000000000108.cfg").map(|d| d.id),
            Some("yealink-v84-common")
        );
        assert_eq!(
            for_file("Poly-VVX", "0004f2000001-kpbx.cfg").map(|d| d.id),
            Some("poly-ucs-6-params")
        );
        assert_eq!(
            for_file("Poly-VVX", "000000000000.cfg").map(|d| d.id),
            Some("poly-ucs-master")
        );
        assert_eq!(
            for_file("Snom-D785", "snomD785.htm").map(|d| d.id),
            Some("snom-10.1-model")
        );
        assert_eq!(
            for_file("Snom-D785", "snomD785-000413000001.htm").map(|d| d.id),
            Some("snom-10.1-device-htm")
        );
        assert_eq!(
            for_file("Fanvil-X", "f0x3sg000001.cfg").map(|d| d.id),
            Some("fanvil-x")
        );
        // No key twice in one dictionary.
        for d in DICTIONARIES {
            let mut names: Vec<&str> = d.keys.iter().map(|k| k.name).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "{}", d.id);
            for req in d.required {
                assert!(
                    d.keys.iter().any(|k| k.name == req.key),
                    "{}: {}",
                    d.id,
                    req.key
                );
            }
        }
    }
}
