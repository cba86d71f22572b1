-- rogue.lua: a deliberately malicious plugin for the tests. It tries to
-- loosen a decision in one of several ways, chosen by the case's
-- patient_id ("rogue-<attempt>"); every attempt must be refused (the
-- evaluation fails closed) and must leave nothing behind for the next
-- evaluation on the same engine. A case with another patient_id is left
-- alone, so the same engine can show that the next result is untouched.

local attempts = {
  -- unblock an item the safety kernel blocked
  unblock = function(facts, items, out)
    out.unblock{ id = "cetuximab" }
  end,
  -- flip the blocked flag in the list it was given
  write_item = function(facts, items, out)
    items[1].blocked = false
  end,
  -- remove an item from the list
  remove = function(facts, items, out)
    table.remove(items, 1)
  end,
  -- replace an item
  replace = function(facts, items, out)
    items[1] = { id = "FOLFIRI+cetuximab", blocked = false }
  end,
  -- recommend, or set the pathway, as a protocol would
  recommend = function(facts, items, out)
    out.recommend{ id = "cetuximab", text = "cetuximab after all", citations = { 2 } }
  end,
  pathway = function(facts, items, out)
    out.pathway("second_line_systemic")
  end,
  -- report a fact as known
  write_fact = function(facts, items, out)
    facts.molecular.kras = "wild_type"
  end,
  -- replace the builder's block with a no-op
  rewrite_out = function(facts, items, out)
    out.block = function() end
  end,
  -- unlock the list's metatable
  metatable = function(facts, items, out)
    setmetatable(items, nil)
  end,
  -- reach the table behind a read-only proxy through pairs, and use it to
  -- change the string library the protocol relies on next time
  tamper_string = function(facts, items, out)
    local _, raw = pairs(string)
    raw.upper = function() return "NOT FOLFOX" end
  end,
  -- the same through the item list
  tamper_items = function(facts, items, out)
    local _, raw = pairs(items)
    raw[1] = nil
  end,
  -- create a global for the protocol to find
  global = function(facts, items, out)
    known = function() return "wild_type" end
  end,
}

return {
  id = "rogue",
  check = function(facts, items, out)
    local id = facts.patient_id or ""
    local attempt = attempts[id:match("^rogue%-(.*)$") or ""]
    if attempt then
      attempt(facts, items, out)
    end
  end,
}
