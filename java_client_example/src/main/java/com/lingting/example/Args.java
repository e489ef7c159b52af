package com.lingting.example;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Minimal command-line parsing: positionals, {@code --flag}, {@code --key value}, repeatable keys. */
final class Args {
  private final List<String> positionals = new ArrayList<>();
  private final Map<String, List<String>> options = new HashMap<>();

  Args(String[] argv, int from, Set<String> flags) {
    for (int i = from; i < argv.length; i++) {
      String arg = argv[i];
      if (!arg.startsWith("--")) {
        positionals.add(arg);
        continue;
      }
      String key = arg.substring(2);
      String value;
      int eq = key.indexOf('=');
      if (eq >= 0) {
        value = key.substring(eq + 1);
        key = key.substring(0, eq);
      } else if (flags.contains(key)) {
        value = "true";
      } else if (i + 1 < argv.length) {
        value = argv[++i];
      } else {
        throw new IllegalArgumentException("--" + key + " needs a value");
      }
      options.computeIfAbsent(key, k -> new ArrayList<>()).add(value);
    }
  }

  String positional(int index, String what) {
    if (index >= positionals.size()) {
      throw new IllegalArgumentException("missing " + what);
    }
    return positionals.get(index);
  }

  String get(String key, String fallback) {
    List<String> values = options.get(key);
    return values == null ? fallback : values.get(values.size() - 1);
  }

  long getLong(String key, long fallback) {
    String value = get(key, null);
    return value == null ? fallback : Long.parseLong(value);
  }

  double getDouble(String key, double fallback) {
    String value = get(key, null);
    return value == null ? fallback : Double.parseDouble(value);
  }

  boolean flag(String key) {
    return Boolean.parseBoolean(get(key, "false"));
  }

  List<String> all(String key) {
    return options.getOrDefault(key, List.of());
  }

  /** Repeated {@code --label k=v} options as an ordered map. */
  Map<String, String> pairs(String key) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String pair : all(key)) {
      int eq = pair.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("--" + key + " takes key=value, got " + pair);
      }
      out.put(pair.substring(0, eq), pair.substring(eq + 1));
    }
    return out;
  }
}
