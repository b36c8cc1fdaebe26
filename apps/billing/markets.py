"""Meta's pricing markets: a recipient's country (ISO 3166 alpha-2) -> the market name of the rate card."""

NAMED = {
    "AR": "Argentina", "BR": "Brazil", "CL": "Chile", "CO": "Colombia", "EG": "Egypt", "FR": "France",
    "DE": "Germany", "IN": "India", "ID": "Indonesia", "IL": "Israel", "IT": "Italy", "MY": "Malaysia",
    "MX": "Mexico", "NL": "Netherlands", "NG": "Nigeria", "PK": "Pakistan", "PE": "Peru", "RU": "Russia",
    "SA": "Saudi Arabia", "ZA": "South Africa", "ES": "Spain", "TR": "Turkey", "AE": "United Arab Emirates",
    "GB": "United Kingdom", "US": "North America", "CA": "North America",
}
REGIONS = {
    "Rest of Africa": "DZ AO BJ BW BF BI CM TD CG CD DJ ER ET GA GM GH GN GW CI KE LS LR LY MG MW ML MR MA MZ NA "
                      "NE RW SN SL SO SS SD SZ TZ TG TN UG ZM ZW",
    "Rest of Asia Pacific": "AF AU BD KH CN HK JP LA MO MN NP NZ PG PH SG LK TW TJ TH TM UZ VN",
    "Rest of Central & Eastern Europe": "AL AM AZ BY BG HR CZ GE GR HU LV LT MK MD PL RO RS SK SI UA",
    "Rest of Latin America": "BO CR DO EC SV GT HT HN JM NI PA PY PR UY VE",
    "Rest of Middle East": "BH IQ JO KW LB OM QA YE",
    "Rest of Western Europe": "AT BE DK FI IE NO PT SE CH",
}
_REGION_OF = {code: market for market, codes in REGIONS.items() for code in codes.split()}


def market_for_country(country: str) -> str:
    return NAMED.get(country) or _REGION_OF.get(country) or "Other"
