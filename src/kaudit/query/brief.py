"""The product brief's two SLS queries, as the article wrote them (its lost commas restored,
`'?(.*)'` written `'\\?(.*)'` and `(w+)` written `(\\w+)`): the demo, the tests and the
benchmark run these exact texts."""

from __future__ import annotations

# A: who executed which command in which container (alert 7.1).
QUERY_A = (
    "verb : create and objectRef.subresource:exec and stage:  ResponseStarted | SELECT auditID "
    'as "事件ID", date_format(from_unixtime(__time__), \'%Y-%m-%d %T\') as "操作时间", '
    'regexp_extract("requestURI", \'([^?]*)/exec?.*\', 1) as "资源", '
    'regexp_extract("requestURI", \'\\?(.*)\', 1) as "命令", "responseStatus.code" as '
    '"状态码", CASE WHEN "user.username" != \'kubernetes-admin\' then "user.username" WHEN '
    "\"user.username\" = 'kubernetes-admin' and regexp_like("
    "\"annotations.authorization.k8s.io/reason\", 'RoleBinding') then regexp_extract("
    '"annotations.authorization.k8s.io/reason", \' to User "(\\w+)"\', 1) ELSE '
    "'kubernetes-admin' END as \"操作账号\", CASE WHEN json_array_length(sourceIPs) = 1 then "
    'json_format(json_array_get(sourceIPs, 0)) ELSE sourceIPs END as "源地址" limit 100'
)
# B: public source IPs with more than 10 requests and a failure rate above 50 % (alert 7.2).
QUERY_B = (
    '* | select ip as "源地址", total as "访问次数", round(rate * 100, 2) as "失败率%", '
    "failCount as \"非法访问次数\", CASE when security_check_ip(ip) = 1 then 'yes' else 'no' "
    'end as "是否高危IP", ip_to_country(ip) as "国家", ip_to_province(ip) as "省", '
    'ip_to_city(ip) as "市", ip_to_provider(ip) as "运营商" from (select CASE WHEN '
    "json_array_length(sourceIPs) = 1 then json_format(json_array_get(sourceIPs, 0)) ELSE "
    'sourceIPs END as ip, count(1) as total, sum(CASE WHEN "responseStatus.code" < 400 then 0 '
    'ELSE 1 END) * 1.0 / count(1) as rate, count_if("responseStatus.code" = 403) as failCount '
    "from log group by ip limit 10000) where ip_to_domain(ip) != 'intranet' having "
    '"访问次数" > 10 and "失败率%" > 50 ORDER by "访问次数" desc limit 100'
)
