"""The Lua scripts of smsbridge's shared state in Redis: each operation on an account's keys is
one script, carried out whole on Redis's own clock."""

from __future__ import annotations

__all__ = [
    "ACQUIRE",
    "CLAIM",
    "COMMIT",
    "DEFER",
    "HOLD",
    "RELEASE",
    "RESERVE",
    "UNHOLD",
    "scripts",
]


def _now_us(given: int) -> str:
    """Lua that sets ``now`` to Redis's clock in microseconds, or to ``ARGV[given]`` where a
    test names one."""
    return f"""
local now = tonumber(ARGV[{given}])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end"""


# One atomic step on Redis's own clock. The caller is given a definite start time (and the
# clock's reading, from which it learns how Redis's clock stands to its own) -- now,
# or the moment the `limit`-th most recent start (past or already promised) leaves the span --
# and that time is recorded at once, so no other caller can take it: callers are served in
# the order they ask, across processes, and nobody polls. ARGV[7...] name promises of the same
# caller gone stale or left unused (dropped: they can only have held others back). A caller
# whose promise went stale (ARGV[5] = '1') takes the earliest safe start, not the back of the
# queue: a start `limit` places after the newest ones, plus the span, is safe wherever it
# falls among promises already made; first come, first served is only fairness. ARGV[6]
# (microseconds) puts the start at least that far ahead: a caller whose process was too busy
# to keep its promise in time asks for one it can keep (a later start is always safe).
# ARGV[7] (microseconds, the promise's width) lets a busy process write any time from the
# start to that much after it: the start is recorded as its latest moment, so every later
# start counts from a moment at or after the write, and nothing crowds a span; the member
# then ends in '/<width>', so that the queue's order goes by the start. (ARGV[4],
# and ARGV[2] of DEFER, give "now" in microseconds for tests; callers leave them empty.)
# The starts are all the state there is, and Redis may lose them: a restart without
# persistence, a flush, an eviction, a failover to a replica behind, a restore of an older
# snapshot. So a mark (KEYS[3]) names the set's generation, made with the set, and the moment
# of the last call; both keys live a week past it (a few members an account), so a loss is
# told from idleness. A caller says the generation it last saw (ARGV[8]) and the moment of
# its last answer (ARGV[9]). The set was lost when the mark or the set is gone, or the mark
# is older than the caller's answer (the state went back in time): it is made anew, holding
# a whole window of starts at that moment ("~x:<n>", limit of them), so that no new start
# shares a span with what any process started before the loss (an account's first start
# waits a span too: nothing tells a new account from a lost one). A caller that finds
# another generation than its own while it holds starts or promises that may still count
# (ARGV[10] of them) is told so (-1) and asks again with them (ARGV[11] pairs of score and
# member from ARGV[12]), which go back into the set: each process puts its own back at its
# next call. (What a loss can still let crowd a span: promises more than a span ahead in a
# process that has not yet asked again when another is given starts beside them; a caller
# that never asked, first after a restore of an older snapshot; a new host's clock ahead of
# the old one's.) ARGV[12 + 2 * ARGV[11]...] name the stale or unused promises. A caller of
# an earlier version leaves the mark alone and counts the window made at a loss as starts.

ACQUIRE = (
    _now_us(4)
    + """
local limit = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local told, heard = ARGV[8] or '', tonumber(ARGV[9]) or 0
local live, back = tonumber(ARGV[10]) or 0, tonumber(ARGV[11]) or 0
local mark = redis.call('GET', KEYS[3])
local generation, written = nil, 0
if mark then
    generation, written = string.match(mark, '^(.*) (%d+)$')
    written = tonumber(written)
end
if not generation or written < heard or redis.call('EXISTS', KEYS[1]) == 0 then
    generation = now .. ':' .. ARGV[3]  -- lost, or new: made anew, a window full
    for i = 1, limit do
        redis.call('ZADD', KEYS[1], now, '~x:' .. i)
    end
    redis.call('PEXPIRE', KEYS[1], 604800000)
end
redis.call('SET', KEYS[3], generation .. ' ' .. string.format('%d', now), 'PX', 604800000)
if told ~= '' and generation ~= told and live > 0 and back == 0 then
    return {-1, now, generation}
end
for i = 0, back - 1 do
    redis.call('ZADD', KEYS[1], 'NX', ARGV[12 + 2 * i], ARGV[13 + 2 * i])
end
for i = 12 + 2 * back, #ARGV do
    redis.call('ZREM', KEYS[1], ARGV[i])
end
local start = math.max(now + (tonumber(ARGV[6]) or 0), tonumber(redis.call('GET', KEYS[2]) or '0'))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
    local kth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    start = math.max(start, tonumber(kth[2]) + span)
end
if count > 0 and ARGV[5] ~= '1' then
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    local width = tonumber(string.match(last[1], '/(%d+)$')) or 0
    start = math.max(start, tonumber(last[2]) - width)
end
redis.call('ZADD', KEYS[1], start + (tonumber(ARGV[7]) or 0), ARGV[3])
redis.call('PEXPIRE', KEYS[1], 604800000)  -- a week past the last call, as the mark
return {start, now, generation}
"""
)

DEFER = (
    _now_us(2)
    + """
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], until_, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""
)


# The duplicate window is a few hashes per account, one per bucket of the server's clock
# (KEYS[1] names them, "<namespace>:w:<log2 of the bucket's length>:", and the bucket's
# number follows; a bucket is twice the TTL, longer than an entry lives, 2^18 ms for the
# default two minutes, so a live entry is in the current bucket or the one before): a
# recipient's entry is a field, its keyed hash, written into the bucket of the moment it was
# written, so
# a batch is one HMGET per bucket and one HSET, not a hundred keys. The value says until
# when it holds (13-digit server milliseconds; a hash only expires as a whole, once
# everything written into it has) and what it is: "r<send>/<run>:<index>" while reserved,
# "R…" once the run took it over from an earlier run of the send, "c…" once committed (the
# holder names a run of a send, see DuplicateWindow). A field's newest value is the one in the
# newest bucket that has it (a later write shadows an earlier one; a release drops them all).
# ARGV, the same for the three scripts: [1] milliseconds the entry holds (a release: how long
# entries may live, so how far back to look), [2] holder, [3] the recipients' indices,
# comma-separated, or "<first>+<count>" for a run of them (one argument, not one per key: a
# batch's call is a hundred keys), [4] the
# server's "now" in milliseconds, for tests (callers leave it empty), [5] the buckets'
# length in milliseconds, [6...] the fields (at most a few thousand: Lua's unpack has a limit).
_WINDOW = """
local now = tonumber(ARGV[4])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local life, span = tonumber(ARGV[1]), tonumber(ARGV[5])
local bucket = math.floor(now / span)
local oldest = bucket - math.ceil(life / span)
local count = #ARGV - 5 -- the fields: ARGV[5 + i] is the i-th recipient's
local function newest()
    local found, missing = {}, count
    for b = bucket, oldest, -1 do
        if missing == 0 then
            break
        end
        local got = redis.call('HMGET', KEYS[1] .. b, unpack(ARGV, 6))
        for i = 1, count do
            if found[i] == nil and got[i] then
                found[i] = got[i]
                missing = missing - 1
            end
        end
    end
    return found
end
local function write(sets)
    local key = KEYS[1] .. bucket
    redis.call('HSET', key, unpack(sets))
    local keep = (bucket + 1) * span + life - now + 1000
    if redis.call('PTTL', key) < keep then
        redis.call('PEXPIRE', key, keep)
    end
end
local stamp = string.format('%013d', now + life)
local function each(indices)
    local first, count = string.match(indices, '^(%d+)%+(%d+)$')
    if not first then
        return string.gmatch(indices, '[^,]+')
    end
    local index, last = tonumber(first) - 1, tonumber(first) + tonumber(count) - 1
    return function()
        if index < last then
            index = index + 1
            return index
        end
    end
end
"""

# Returns one digit per recipient: 0 (ours: new, or this run's own reservation), 1
# (committed, by anyone: this send's own commit too, its message went), 2 (reserved by
# another recipient, not yet settled), 3 (this recipient's reservation by an earlier run of
# the same send, taken over: it may have sent it). A call carried out twice (its first answer
# lost) answers the same: a takeover stays a takeover.
RESERVE = (
    _WINDOW
    + """
local found = newest()
local send = string.match(ARGV[2], '^[^/]*') .. '/'
local fresh = stamp .. 'r' .. ARGV[2] .. ':' -- a new reservation's value, but its index
local out, sets, written = {}, {}, {}
local i, n = 0, 0
for index in each(ARGV[3]) do
    i = i + 1
    local field = ARGV[5 + i]
    local held = written[field] or found[i]
    local state = nil
    if held and tonumber(string.sub(held, 1, 13)) > now then
        state, held = string.sub(held, 14, 14), string.sub(held, 15)
    end
    local value = nil
    if not state then
        value, out[i] = fresh .. index, '0'
    else
        local body, tail, mark = ARGV[2] .. ':' .. index, ':' .. index, nil
        if state == 'c' then
            out[i] = '1'
        elseif held == body then
            mark, out[i] = state, (state == 'r' and '0' or '3')
        elseif string.sub(held, 1, #send) == send and string.sub(held, -#tail) == tail then
            mark, out[i] = 'R', '3'
        else
            out[i] = '2'
        end
        if mark then
            value = stamp .. mark .. body
        end
    end
    if value then
        written[field] = value
        sets[n + 1], sets[n + 2], n = field, value, n + 2
    end
end
if n > 0 then
    write(sets)
end
return table.concat(out)
"""
)

COMMIT = (
    _WINDOW
    + """
local sets = {}
local head = stamp .. 'c' .. ARGV[2] .. ':'
local i = 0
for index in each(ARGV[3]) do
    i = i + 1
    sets[2 * i - 1] = ARGV[5 + i]
    sets[2 * i] = head .. index
end
if i > 0 then
    write(sets)
end
return i
"""
)

# Drops the live reservations of this run for these recipients (from every bucket); a bare
# send (no '/'), those of any run of that send (a journaled resume frees what a dead run
# reserved and surely did not write).
RELEASE = (
    _WINDOW
    + """
local found = newest()
local any = not string.find(ARGV[2], '/', 1, true)
local send = ARGV[2] .. '/'
local gone = {}
local i = 0
for index in each(ARGV[3]) do
    i = i + 1
    local held, tail = found[i], ':' .. index
    if held and tonumber(string.sub(held, 1, 13)) > now and string.sub(held, 14, 14) ~= 'c' then
        held = string.sub(held, 15)
        local match
        if any then
            match = string.sub(held, 1, #send) == send and string.sub(held, -#tail) == tail
        else
            match = held == ARGV[2] .. tail
        end
        if match then
            gone[#gone + 1] = ARGV[5 + i]
        end
    end
end
if #gone > 0 then
    for b = bucket, oldest, -1 do
        redis.call('HDEL', KEYS[1] .. b, unpack(gone))
    end
end
return #gone
"""
)

# KEYS[1]: a run's lease; ARGV[1]: the run; ARGV[2]: milliseconds. Taken or renewed (1)
# unless another run holds it (0).
HOLD = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

UNHOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1]: the account's id counter, KEYS[2]: the block's name; ARGV: count, size, seconds
# the block is remembered. The same block name gets the same start (a retry after a timeout).
CLAIM = """
local given = redis.call('GET', KEYS[2])
if given then
    return tonumber(given)
end
local size = tonumber(ARGV[2])
local start = tonumber(redis.call('GET', KEYS[1]) or ARGV[4] or '0') % size
redis.call('SET', KEYS[1], (start + tonumber(ARGV[1])) % size)
redis.call('SET', KEYS[2], start, 'EX', ARGV[3])
return start
"""

scripts = {
    "acquire": ACQUIRE,
    "defer": DEFER,
    "reserve": RESERVE,
    "commit": COMMIT,
    "release": RELEASE,
    "hold": HOLD,
    "unhold": UNHOLD,
    "claim": CLAIM,
}
"""Every Lua script smsbridge runs, by name (for tests and stand-ins of Redis)."""
