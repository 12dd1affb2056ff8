"""Detection: rules as data (YAML), compiled to SLS queries and run on the store.

model.py      the frozen rule records
load.py       YAML -> rules, schema-checked, errors with file:line
condition.py  SLS trigger-condition language (`[失败率%] > 50`)
compile.py    rule -> SLS query text -> SQL (one CompiledQuery per rule)
engine.py     streaming pass over a batch (all rules in one SQL), scheduled rounds, backtest
sigma.py      Sigma -> kaudit rules (pySigma parser, our field mapping)
"""
