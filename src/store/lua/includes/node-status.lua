local function isTerminalNode(status)
  return status == 'done' or status == 'skipped' or status == 'failed' or status == 'cancelled'
end
