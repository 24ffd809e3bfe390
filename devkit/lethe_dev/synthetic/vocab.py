"""Word lists for Dutch-looking synthetic data: names, companies, streets, cities, devices.

Everything here is invented or generic; combined at random these lists give values that
look like a Dutch business provider's data without describing any real person. The lists
are tuples so their order (and therefore the generated data) never changes by accident.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Jan",
    "Pieter",
    "Kees",
    "Willem",
    "Hendrik",
    "Joost",
    "Sander",
    "Bas",
    "Maarten",
    "Ruud",
    "Thijs",
    "Daan",
    "Sem",
    "Lucas",
    "Bram",
    "Jeroen",
    "Erik",
    "Mark",
    "Niels",
    "Rob",
    "Mohamed",
    "Youssef",
    "Ahmed",
    "Mehmet",
    "Emre",
    "Rajesh",
    "Wei",
    "Tomasz",
    "Dennis",
    "Anna",
    "Maria",
    "Sanne",
    "Lotte",
    "Eva",
    "Femke",
    "Marieke",
    "Inge",
    "Annemiek",
    "Petra",
    "Sophie",
    "Emma",
    "Julia",
    "Lisa",
    "Noor",
    "Fleur",
    "Ilse",
    "Karin",
    "Monique",
    "Esther",
    "Fatima",
    "Samira",
    "Naima",
    "Ayse",
    "Elif",
    "Priya",
    "Mei",
    "Agnieszka",
    "Chantal",
)

#: Surnames with their "tussenvoegsel" (prefix) written as Dutch people write them.
SURNAMES: tuple[str, ...] = (
    "de Vries",
    "Jansen",
    "de Jong",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van den Berg",
    "van Dijk",
    "Schouten",
    "van Beek",
    "Willems",
    "van Vliet",
    "Hoekstra",
    "Maas",
    "Verhoeven",
    "Koster",
    "Prins",
    "Blom",
    "Huisman",
    "Kuipers",
    "Postma",
    "van Wijk",
    "Timmermans",
    "El Amrani",
    "Bouzid",
    "El Idrissi",
    "Yilmaz",
    "Kaya",
    "Demir",
    "Ramdin",
    "Chen",
    "Nowak",
    "Kowalski",
    "Tan",
    "Wong",
    "Baldewsingh",
    "Ait Taleb",
)

#: First parts of company names (often a family name or a place-like word).
COMPANY_STEMS: tuple[str, ...] = (
    "Van Dijk",
    "De Groot",
    "Bakker",
    "Smit",
    "Hoekstra",
    "Van der Meer",
    "Noordzee",
    "Zuidas",
    "Polder",
    "Dijkzicht",
    "Grachtengordel",
    "Molenaar",
    "Kroon",
    "Waterland",
    "Brinkman",
    "Van Leeuwen",
    "Eikenhorst",
    "Lindeboom",
    "Zeeburg",
    "Kempen",
    "Veluwe",
    "Duinrand",
    "Havenkwartier",
    "Oranje",
    "Rijnmond",
    "Twente",
    "Amstel",
    "Maasland",
    "De Wit",
    "Visser",
    "Hollandia",
    "Vaart",
    "Schelde",
    "Meerburg",
    "Heuvelrug",
)

#: Second parts of company names: what the business does.
COMPANY_TRADES: tuple[str, ...] = (
    "Installatietechniek",
    "Logistiek",
    "Advocaten",
    "Accountants",
    "Bouw",
    "Transport",
    "Tandartsen",
    "Makelaardij",
    "Architecten",
    "Groothandel",
    "Bakkerij",
    "Autoschade",
    "Schilderwerken",
    "Zorggroep",
    "Vastgoed",
    "Consultancy",
    "Drukkerij",
    "Techniek",
    "Hoveniers",
    "Notarissen",
    "Fysiotherapie",
    "Catering",
    "Elektra",
    "Metaalbewerking",
    "Verhuur",
    "Kinderopvang",
    "Software",
    "Reclame",
    "Dierenkliniek",
    "Beveiliging",
)

#: Independent advisers who act as contact person for more than one customer.
ADVISER_TRADES: tuple[str, ...] = (
    "ICT Beheer",
    "IT Advies",
    "Systeembeheer",
    "Kantoorautomatisering",
    "Netwerkdiensten",
)

STREETS: tuple[str, ...] = (
    "Kerkstraat",
    "Dorpsstraat",
    "Stationsweg",
    "Molenweg",
    "Schoolstraat",
    "Wilhelminastraat",
    "Julianastraat",
    "Beatrixlaan",
    "Industrieweg",
    "Havenstraat",
    "Nieuwstraat",
    "Marktplein",
    "Kanaalweg",
    "Parallelweg",
    "Hoofdstraat",
    "Prinsengracht",
    "Keizersgracht",
    "Herengracht",
    "Coolsingel",
    "Lange Voorhout",
    "Oudegracht",
    "Vestdijk",
    "Grote Markt",
    "Zuiderzeeweg",
    "Laan van Meerdervoort",
    "Energieweg",
    "Transportweg",
    "Ambachtsweg",
    "Handelsweg",
    "Nijverheidsweg",
    "Edisonstraat",
    "Marconistraat",
    "Koningin Emmalaan",
    "Rijksstraatweg",
    "Weteringschans",
    "Stadhouderskade",
    "Boompjes",
    "Vredenburg",
)

#: (city, first two digits of its postal codes, landline area code without the leading 0).
CITIES: tuple[tuple[str, str, str], ...] = (
    ("Amsterdam", "10", "20"),
    ("Rotterdam", "30", "10"),
    ("Den Haag", "25", "70"),
    ("Utrecht", "35", "30"),
    ("Eindhoven", "56", "40"),
    ("Groningen", "97", "50"),
    ("Haarlem", "20", "23"),
    ("Arnhem", "68", "26"),
    ("Zwolle", "80", "38"),
    ("Leiden", "23", "71"),
    ("Tilburg", "50", "13"),
    ("Breda", "48", "76"),
    ("Nijmegen", "65", "24"),
    ("Amersfoort", "38", "33"),
    ("Delft", "26", "15"),
    ("Almere", "13", "36"),
    ("Enschede", "75", "53"),
    ("Maastricht", "62", "43"),
    ("'s-Hertogenbosch", "52", "73"),
    ("Apeldoorn", "73", "55"),
)

#: Letters allowed in the letter pair of a Dutch postal code (SA, SD and SS are not issued).
POSTCODE_LETTERS = "ABCDEFGHJKLMNPRSTVWXZ"
POSTCODE_PAIRS_NOT_ISSUED = frozenset({"SA", "SD", "SS"})

#: Prefixes of public IPv4 networks used for synthetic customer and visitor addresses.
PUBLIC_IP_PREFIXES: tuple[tuple[int, int], ...] = (
    (31, 151),
    (77, 160),
    (77, 172),
    (80, 100),
    (82, 161),
    (84, 241),
    (86, 80),
    (87, 208),
    (145, 53),
    (185, 93),
    (212, 61),
    (213, 127),
    (217, 100),
)

#: Organisationally unique identifiers of common VoIP handset makers.
HANDSET_OUIS: tuple[str, ...] = ("00:04:13", "80:5e:c0", "00:15:65", "00:04:f2", "7c:2f:80")

#: Type allocation codes (first 8 IMEI digits) of common phones.
IMEI_TACS: tuple[str, ...] = (
    "35328511",
    "35407115",
    "35925406",
    "35290611",
    "35391110",
    "86753104",
    "35684610",
)

#: Mobile network codes of Dutch operators, used in cell ids (MCC 204).
MOBILE_NETWORK_CODES: tuple[str, ...] = ("04", "08", "16", "20")

MANAGED_DEVICE_TYPES: tuple[str, ...] = (
    "laptop",
    "desktop",
    "server",
    "firewall",
    "switch",
    "printer",
    "nas",
    "access point",
)

INSTALLED_SOFTWARE: tuple[str, ...] = (
    "Microsoft 365",
    "Windows 11 Pro",
    "Windows Server 2022",
    "Ubuntu 22.04 LTS",
    "Sophos Endpoint",
    "ESET Endpoint Security",
    "Exact Online Connector",
    "AFAS Profit",
    "Adobe Acrobat Reader",
    "Google Chrome",
    "Mozilla Firefox",
    "TeamViewer Host",
    "Veeam Agent",
    "FortiClient",
    "AutoCAD LT",
    "Visma Nmbrs",
)

TICKET_SUBJECTS: tuple[str, ...] = (
    "Internet valt steeds weg",
    "Storing telefonie",
    "Nummer overzetten",
    "Factuur klopt niet",
    "Nieuwe medewerker toevoegen",
    "Wachtwoord mailbox vergeten",
    "Simkaart geblokkeerd",
    "Databundel op",
    "Doorschakelen instellen",
    "Back-up mislukt",
    "Alarmmelding zonder reden",
    "Wifi traag op kantoor",
    "Toestel geeft geen kiestoon",
    "Verhuizing kantoor",
    "Opzegging dienst",
    "VPN verbinding werkt niet",
    "Spam in mailbox",
    "Roaming in Duitsland",
)

TICKET_BODIES: tuple[str, ...] = (
    "Sinds vanochtend werkt het niet meer. Kunnen jullie kijken?",
    "Wij hebben dit probleem nu voor de derde keer deze maand.",
    "Graag zo snel mogelijk oplossen, we kunnen niet werken.",
    "Kunt u mij laten weten wat de kosten hiervan zijn?",
    "Dit speelt op alle werkplekken op de eerste verdieping.",
    "Na de herstart van de router was het probleem even weg.",
    "Zie bijgevoegde schermafdruk van de foutmelding.",
)

CONTACT_FORM_MESSAGES: tuple[str, ...] = (
    "Wij willen graag een offerte voor glasvezel op ons nieuwe kantoor.",
    "Kunnen jullie ons helpen met het overzetten van 12 mobiele nummers?",
    "Graag meer informatie over jullie 24/7 alarmopvolging.",
    "Wat kost een VoIP-toestel per maand inclusief onderhoud?",
    "Wij zoeken een partij voor beheer van onze werkplekken en servers.",
    "Ik wil graag teruggebeld worden over een klacht.",
    "Hebben jullie ook een cloudoplossing voor back-ups?",
)

ROAMING_MESSAGES: tuple[str, ...] = (
    "Welkom in {country}. Bellen, sms en internet kosten hier hetzelfde als in Nederland.",
    "Welkom in {country}. U valt buiten de EU-bundel; bellen kost 1,50 euro per minuut.",
)
ROAMING_COUNTRIES: tuple[str, ...] = (
    "Belgie",
    "Duitsland",
    "Frankrijk",
    "Spanje",
    "Turkije",
    "Zwitserland",
    "Verenigde Staten",
)
BUNDLE_MESSAGES: tuple[str, ...] = (
    "U heeft 80% van uw databundel verbruikt.",
    "Uw databundel is op. U surft nu met beperkte snelheid.",
    "U heeft 100% van uw belbundel verbruikt; extra minuten worden apart gefactureerd.",
)

WEB_PAGES: tuple[str, ...] = (
    "/",
    "/zakelijk-internet",
    "/glasvezel",
    "/voip-telefonie",
    "/mobiel-abonnement",
    "/cloud-backup",
    "/managed-services",
    "/alarmopvolging",
    "/contact",
    "/over-ons",
    "/vacatures",
    "/support",
    "/support/storingen",
    "/blog/5g-voor-bedrijven",
    "/blog/thuiswerken-veilig",
    "/prijzen",
    "/offerte-aanvragen",
    "/privacyverklaring",
)

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "LetheProviderApp/3.4.1 (Android 13)",
    "LetheProviderApp/3.4.1 (iOS 17.1)",
)

#: Public remote hosts that appear as destinations in internet traffic logs.
REMOTE_HOSTS: tuple[str, ...] = (
    "142.250.179.174",
    "157.240.201.35",
    "13.107.42.14",
    "104.16.132.229",
    "151.101.1.140",
    "20.190.160.20",
    "52.97.146.162",
    "185.199.108.153",
)

#: Mail domains of parties outside the customer base (suppliers, authorities, clients).
OUTSIDE_MAIL_DOMAINS: tuple[str, ...] = (
    "leverancier-groothandel.nl",
    "gemeente-voorbeeld.nl",
    "belastingdienst-voorbeeld.nl",
    "klantportaal-voorbeeld.nl",
    "accountantskantoor-voorbeeld.nl",
    "bouwbedrijf-voorbeeld.nl",
)
