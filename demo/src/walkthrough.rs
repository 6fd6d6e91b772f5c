//! The start-up banner of `bru demo`: where things are, and a walkthrough to
//! paste into a POSIX shell.

use std::path::Path;

use crate::world::{K429, NAV, POLICE, SNOOP};

/// The banner `bru demo` prints once it listens: the URLs and a copy-paste
/// walkthrough (curl, and jq for the token lines) against the demo world.
pub fn walkthrough(public_url: &str, ops_url: &str, dir: &Path) -> String {
    let base = public_url.trim_end_matches('/');
    let ops = ops_url.trim_end_matches('/');
    let dir_shown = dir.display().to_string();
    let ca = shell_quote(&dir.join("ca.pem").display().to_string());
    let b = shell_quote(base);
    let kari = "12884513829";
    let token = |org: &str, scope: &str| {
        format!(
            "$(curl -sS --cacert \"$CA\" \"$B/demo/maskinporten/token\" -d '{{\"org\":\"{org}\",\"scope\":\"{scope}\"}}' | jq -r .access_token)"
        )
    };
    let nav_token = token(NAV.org, "k429:sosialtjeneste.read");
    let police_token = token(POLICE.org, "k429:sosialtjeneste.read");
    let audit_token = token(K429.org, "bru:audit");
    let snoop_token = token(SNOOP.org, "k429:sosialtjeneste.read");
    let k429_token = token(
        K429.org,
        "nav:inntekt.read helsenorge:hjemmetjeneste.read bru:consent",
    );
    let kari_token = format!(
        "$(curl -sS --cacert \"$CA\" \"$B/demo/idporten/token\" -d '{{\"pid\":\"{kari}\"}}' | jq -r .access_token)"
    );
    let (aisha, per) = ("24916214088", "15895013789");
    let aisha_token = format!(
        "$(curl -sS --cacert \"$CA\" \"$B/demo/idporten/token\" -d '{{\"pid\":\"{aisha}\",\"fullmakt\":{{\"owner\":\"{per}\",\"roles\":[\"helse\",\"velferd\"]}}}}' | jq -r .access_token)"
    );
    format!(
        r#"Bru demo is running. Stop it with Ctrl-C; its state stays in {dir_shown}.

  Gateway, citizen portal  {base}/      (log in as a demo person)
  Datasets                 {base}/catalog/v1/datasets
  Ops                      {ops}/metrics   {ops}/healthz   {ops}/readyz
  Config                   {config}  (works with every `bru … --config` command)
  Demo CA                  {ca_shown}

Try it in a POSIX shell (needs curl and jq):

  CA={ca}; B={b}

  # NAV gets a Maskinporten token from the demo issuer ...
  NAV={nav_token}
  # (without jq: ... | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

  # ... and reads Kari Nordmann's social-service case at K429, under statute:
  curl -sS --cacert "$CA" "$B/data/k429/sosialtjeneste" -H "Authorization: Bearer $NAV" \
    -H 'Bru-Purpose: sosialhjelp-saksbehandling' -H 'Nav-Personident: {kari}'

  # Snoop AS has no rights at all: 403 consumer_not_allowed.
  SNOOP={snoop_token}
  curl -sS --cacert "$CA" "$B/data/k429/sosialtjeneste" -H "Authorization: Bearer $SNOOP" \
    -H 'Bru-Purpose: sosialhjelp-saksbehandling' -H 'Nav-Personident: {kari}'

  # K429 asks NAV for Kari's income: that needs her consent, so 403 consent_required.
  K429={k429_token}
  curl -sS --cacert "$CA" "$B/data/nav/inntekt" -H "Authorization: Bearer $K429" \
    -H 'Bru-Purpose: omsorgsbolig-soknad' -H 'Nav-Personident: {kari}'

  # So K429 asks Kari for consent to her income and home care, for 30 days, 10 uses.
  UNTIL=$(jq -nr 'now + 30*86400 | todate')
  ID=$(curl -sS --cacert "$CA" "$B/consent/v1/requests" -H "Authorization: Bearer $K429" \
    -H 'Content-Type: application/json' -d '{{"subject":"{kari}",
      "datasets":["nav/inntekt","helsenorge/hjemmetjeneste"],"purpose":"omsorgsbolig-soknad",
      "valid_to":"'"$UNTIL"'","max_uses":10,"message":"K429 fyller ut søknaden din om omsorgsbolig."}}' \
    | jq -r .id)

  # Kari logs in (demo ID-porten), sees the request and approves it.
  KARI={kari_token}
  curl -sS --cacert "$CA" "$B/citizen/v1/consents" -H "Authorization: Bearer $KARI"
  curl -sS --cacert "$CA" -X POST "$B/citizen/v1/consents/$ID/accept" -H "Authorization: Bearer $KARI"

  # K429 fetches her income (only year and sum) and home care (only CarePlans).
  curl -sS --cacert "$CA" "$B/data/nav/inntekt" -H "Authorization: Bearer $K429" \
    -H 'Bru-Purpose: omsorgsbolig-soknad' -H "Bru-Consent: $ID" -H 'Nav-Personident: {kari}'
  curl -sS --cacert "$CA" "$B/data/helsenorge/hjemmetjeneste?patient={kari}" \
    -H "Authorization: Bearer $K429" -H 'Bru-Purpose: omsorgsbolig-soknad' -H "Bru-Consent: $ID"

  # K429 follows its request: status, uses, events.
  curl -sS --cacert "$CA" "$B/consent/v1/requests/$ID" -H "Authorization: Bearer $K429"

  # Kari blocks K429 (SPEC 10): its next home-care call is 403 blocked_by_subject ...
  BLOCK=$(curl -sS --cacert "$CA" "$B/citizen/v1/blocks" -H "Authorization: Bearer $KARI" \
    -H 'Content-Type: application/json' -d '{{"consumer":"0192:{k429_org}"}}' | jq -r .id)
  curl -sS --cacert "$CA" "$B/data/helsenorge/hjemmetjeneste?patient={kari}" \
    -H "Authorization: Bearer $K429" -H 'Bru-Purpose: omsorgsbolig-soknad' -H "Bru-Consent: $ID"
  # ... but home care allows break-glass: in an emergency the nurse gives a reason,
  # the call passes the block (and nothing else), is recorded with the reason,
  # counted in bru_break_glass_total, and Kari is told.
  curl -sS --cacert "$CA" "$B/data/helsenorge/hjemmetjeneste?patient={kari}" \
    -H "Authorization: Bearer $K429" -H 'Bru-Purpose: omsorgsbolig-soknad' -H "Bru-Consent: $ID" \
    -H 'Bru-Break-Glass: Akutt: Kari svarer ikke på døra, hjemmesykepleien går inn'
  curl -sS --cacert "$CA" -X DELETE "$B/citizen/v1/blocks/$BLOCK" -H "Authorization: Bearer $KARI"

  # Politiet (demo) reads Kari's social-service case for an investigation: recorded
  # at once and in the audit log, but Kari's access log shows it only 30 days later
  # (disclosure_delay_days = 30), with its original time.
  POLICE={police_token}
  curl -sS --cacert "$CA" "$B/data/k429/sosialtjeneste" -H "Authorization: Bearer $POLICE" \
    -H 'Bru-Purpose: etterforskning' -H 'Nav-Personident: {kari}'
  curl -sS --cacert "$CA" "$B/citizen/v1/transfers" -H "Authorization: Bearer $KARI" \
    | jq '[.transfers[].organisation.name]'
  AUDIT={audit_token}
  curl -sS --cacert "$CA" "$B/audit/v1/records?consumer=0192:{police_org}" -H "Authorization: Bearer $AUDIT"

  # Kari sees every transfer about her, and a signed receipt (JWS) for her consent.
  curl -sS --cacert "$CA" "$B/citizen/v1/transfers" -H "Authorization: Bearer $KARI"
  curl -sS --cacert "$CA" "$B/citizen/v1/consents/$ID/receipt" -H "Authorization: Bearer $KARI"

  # Kari revokes; K429's very next call gets 403 consent_revoked.
  curl -sS --cacert "$CA" -X POST "$B/citizen/v1/consents/$ID/revoke" -H "Authorization: Bearer $KARI"
  curl -sS --cacert "$CA" "$B/data/nav/inntekt" -H "Authorization: Bearer $K429" \
    -H 'Bru-Purpose: omsorgsbolig-soknad' -H "Bru-Consent: $ID" -H 'Nav-Personident: {kari}'

  # Kari is Emma's mother (Emma is 12): she approves a consent for Emma, acting
  # for her with the opaque party from /citizen/v1/represented (no person number).
  EMMAS=$(curl -sS --cacert "$CA" "$B/consent/v1/requests" -H "Authorization: Bearer $K429" \
    -H 'Content-Type: application/json' -d '{{"subject":"{emma}",
      "datasets":["nav/inntekt","helsenorge/hjemmetjeneste"],"purpose":"omsorgsbolig-soknad",
      "valid_to":"'"$UNTIL"'"}}' | jq -r .id)
  EMMA=$(curl -sS --cacert "$CA" "$B/citizen/v1/represented" -H "Authorization: Bearer $KARI" | jq -r '.[0].party')
  curl -sS --cacert "$CA" -X POST "$B/citizen/v1/consents/$EMMAS/accept" \
    -H "Authorization: Bearer $KARI" -H "Bru-On-Behalf-Of: $EMMA"

  # Aisha is Per Hansen's guardian: she logs in with a fullmakt for him (demo ID-porten).
  AISHA={aisha_token}
  curl -sS --cacert "$CA" "$B/citizen/v1/represented" -H "Authorization: Bearer $AISHA"

{altinn_story}
Every call above, allowed or refused, is in the transparency log: Kari sees
them under {base}/innsyn after logging in.
"#,
        altinn_story = altinn_story(
            kari,
            &uuid::Uuid::new_v4().to_string(),
            &uuid::Uuid::new_v4().to_string()
        ),
        emma = "07831453839",
        k429_org = K429.org,
        police_org = POLICE.org,
        config = dir.join("bru.toml").display(),
        ca_shown = dir.join("ca.pem").display(),
    )
}

/// The Altinn part of the walkthrough (SPEC 9.4): the same consent given in
/// the demo Altinn and carried in a Maskinporten token, revoked there; then
/// Omsorgsapp as K429's system user, deleted. `a1`, `a2`: fresh consent ids.
pub fn altinn_story(kari: &str, a1: &str, a2: &str) -> String {
    let request = |id: &str, year: &str| {
        format!(
            "curl -sS --cacert \"$CA\" \"$B/demo/altinn/consentrequests\" -H \"Authorization: Bearer $K429R\" -d '{{\"id\":\"{id}\",\n    \"from\":\"urn:altinn:person:identifier-no:{kari}\",\"to\":\"urn:altinn:organization:identifier-no:{k429}\",\n    \"validTo\":\"'\"$UNTIL\"'\",\"consentRights\":[{{\"action\":[\"consent\"],\n    \"resource\":[{{\"type\":\"urn:altinn:resource\",\"value\":\"{resource}\"}}],\"metadata\":{{\"inntektsaar\":\"{year}\"}}}}]}}'",
            k429 = K429.org,
            resource = crate::altinn::RESOURCE_INNTEKT,
        )
    };
    let token = |body: &str| {
        format!("$(curl -sS --cacert \"$CA\" \"$B/demo/maskinporten/token\" -d '{body}' | jq -r .access_token)")
    };
    let income = |t: &str| {
        format!(
            "curl -sS --cacert \"$CA\" \"$B/data/nav/inntekt\" -H \"Authorization: Bearer ${t}\" \\\n    -H 'Bru-Purpose: omsorgsbolig-soknad' -H 'Nav-Personident: {kari}'"
        )
    };
    format!(
        r#"
  # The same through Altinn. K429 asks Kari in the demo Altinn (Altinn's consent
  # request format, with its Maskinporten token), for her 2024 income; Kari approves there.
  K429R={tr}
  {req1}
  curl -sS --cacert "$CA" -X POST "$B/demo/altinn/consentrequests/{a1}/accept" -H "Authorization: Bearer $KARI"

  # K429's Maskinporten token now carries the consent (authorization_details,
  # urn:altinn:consent): no Bru-Consent needed, and only 2024 comes back.
  K429A={t1}
  {inc1}

  # Kari revokes in Altinn. The token is still valid, but Bru reads Altinn's
  # events feed (every 2 s here; Altinn's own feed lags 5 minutes): 403 consent_revoked.
  curl -sS --cacert "$CA" -X POST "$B/demo/altinn/consentrequests/{a1}/revoke" -H "Authorization: Bearer $KARI"
  sleep 3
  {inc1}

  # Omsorgsapp AS calls as K429's system user (system "omsorgsapp"), under a new
  # consent to K429; Bru asks the demo Altinn's decision point on each call.
  {req2}
  curl -sS --cacert "$CA" -X POST "$B/demo/altinn/consentrequests/{a2}/accept" -H "Authorization: Bearer $KARI"
  OMS={t2}
  {inc2}

  # K429 deletes the system user: refused once the cached decision ends (10 s),
  # 403 system_user_not_authorized.
  curl -sS --cacert "$CA" -X DELETE "$B/demo/altinn/systemusers/{su}"
  sleep 11
  {inc2}
"#,
        tr = token(&format!(
            "{{\"org\":\"{}\",\"scope\":\"altinn:consentrequests.write\"}}",
            K429.org
        )),
        req1 = request(a1, "2024"),
        req2 = request(a2, "2024"),
        t1 = token(&format!(
            "{{\"org\":\"{}\",\"scope\":\"nav:inntekt.read\",\"altinn_consent\":\"{a1}\"}}",
            K429.org
        )),
        t2 = token(&format!(
            "{{\"org\":\"{}\",\"scope\":\"nav:inntekt.read\",\"systemuser_org\":\"{}\",\"system_id\":\"{}\",\"altinn_consent\":\"{a2}\"}}",
            crate::world::OMSORGSAPP.org,
            K429.org,
            crate::altinn::OMSORGSAPP_SYSTEM_ID
        )),
        inc1 = income("K429A"),
        inc2 = income("OMS"),
        su = crate::altinn::OMSORGSAPP_SYSTEM_USER,
    )
}

/// Quotes `s` for a POSIX shell: as is when it is plainly safe, else in single
/// quotes (a quote inside becomes `'\''`). Paths with spaces then paste safely.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quote_cases() {
        let check = |input: &str, expected: &str| assert_eq!(shell_quote(input), expected);
        check(".bru-demo/ca.pem", ".bru-demo/ca.pem");
        check("https://localhost:8443", "https://localhost:8443");
        check("/tmp/my demo/ca.pem", "'/tmp/my demo/ca.pem'");
        check("it's", r"'it'\''s'");
        check("", "''");
        check("$HOME/x", "'$HOME/x'");
    }
}
